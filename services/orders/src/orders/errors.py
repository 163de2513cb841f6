from servicekit.errors import AppError


class InsufficientStock(AppError):
    status = 409
    code = "insufficient_stock"
    title = "Insufficient stock"
    final = True


class UnknownProduct(AppError):
    status = 422
    code = "unknown_product"
    title = "Unknown product"
    final = True


class InvalidQuantity(AppError):
    status = 422
    code = "invalid_quantity"
    title = "Invalid quantity"


class OrderNotFound(AppError):
    status = 404
    code = "order_not_found"
    title = "Order not found"


class OrderNotCancellable(AppError):
    status = 409
    code = "order_not_cancellable"
    title = "Order cannot be cancelled"


class PaymentsUnavailable(AppError):
    status = 503
    code = "payments_unavailable"
    title = "Payments unavailable"


class PaymentsRejected(AppError):
    """Payments refused the request itself (not a decline): retrying it would not help."""

    status = 502
    code = "payments_rejected"
    title = "Payments refused the request"


class OrderNotCapturable(AppError):
    status = 409
    code = "order_not_capturable"
    title = "Order cannot be captured"


class OrderNotAuthorized(AppError):
    status = 409
    code = "order_not_authorized"
    title = "Order has no authorized payment"


class OrderNotAuthorizable(AppError):
    status = 409
    code = "order_not_authorizable"
    title = "Order cannot be paid for"


class OrderExpired(AppError):
    status = 409
    code = "order_expired"
    title = "Order reservation expired"


class OrderNotRefundable(AppError):
    status = 409
    code = "order_not_refundable"
    title = "Order cannot be refunded"
    final = True


class RefundExceedsCaptured(AppError):
    status = 409
    code = "refund_exceeds_captured"
    title = "Refund exceeds what was captured"
    final = True


class AuthorizationExpired(AppError):
    status = 409
    code = "authorization_expired"
    title = "Card authorization expired"


class AuthorizationInProgress(AppError):
    """An earlier attempt with another card is not settled yet (its answer was lost): the reconciler settles
    it, then a new card can be tried."""

    status = 409
    code = "authorization_in_progress"
    title = "An authorization is still being settled"


class InvalidCard(AppError):
    status = 422
    code = "invalid_card"
    title = "Invalid card number"

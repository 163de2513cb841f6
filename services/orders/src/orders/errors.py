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


class OrderNotCapturable(AppError):
    status = 409
    code = "order_not_capturable"
    title = "Order cannot be captured"


class PaymentsUnavailable(AppError):
    status = 503
    code = "payments_unavailable"
    title = "Payments unavailable"


class PaymentsRejected(AppError):
    """Payments refused the charge request itself (not a decline): retrying it would not help."""

    status = 502
    code = "payments_rejected"
    title = "Payments refused the charge"

"""Payments' domain errors. ``final`` refusals can never change for that payment (its state only moves
forward), so an idempotent request that ends in one stores and replays it; the others free the key."""

from servicekit.errors import AppError


class PaymentNotFound(AppError):
    status = 404
    code = "payment_not_found"
    title = "Payment not found"


class InvalidCard(AppError):
    status = 422
    code = "invalid_card"
    title = "Invalid card number"


class PaymentPending(AppError):
    """The authorization is still being decided by the processor (or its request died and is not retried
    yet): nothing can be done to the payment until it is."""

    status = 409
    code = "payment_pending"
    title = "Payment still pending"


class PaymentNotCapturable(AppError):
    """Declined or voided: there is no authorization to capture, and there never will be."""

    status = 409
    code = "payment_not_capturable"
    title = "Payment not capturable"
    final = True


class AuthorizationExpired(AppError):
    """The authorization lapsed (PAYMENTS_AUTHORIZATION_TTL_H) before it was captured; it can still be
    voided."""

    status = 409
    code = "authorization_expired"
    title = "Authorization expired"
    final = True


class PaymentNotVoidable(AppError):
    """Declined, or money was already captured (refund it instead)."""

    status = 409
    code = "payment_not_voidable"
    title = "Payment not voidable"
    final = True


class PaymentNotRefundable(AppError):
    """Nothing captured (yet): an authorized payment may still be captured, so this is not final."""

    status = 409
    code = "payment_not_refundable"
    title = "Payment not refundable"


class RefundExceedsCaptured(AppError):
    status = 409
    code = "refund_exceeds_captured"
    title = "Refund exceeds what is left of the capture"
    final = True


class ProcessorUnavailable(AppError):
    """The processor did not answer. Whatever it did is resumed by a retry with the same key (same
    processor reference), so the retry can never move money twice."""

    status = 503
    code = "processor_unavailable"
    title = "Card processor unavailable"

"""The error vocabulary of the schema.

Domain outcomes (insufficient stock, a declined card) are values in a payload's ``errors`` list. Refusals
that cut across fields (no token, rate limited, a query that is too deep) are top-level GraphQL errors with
``extensions.code``. Anything unexpected is masked to ``INTERNAL`` with the request id.
"""

from enum import Enum, StrEnum
from typing import Any

import strawberry


@strawberry.enum
class ErrorCode(Enum):
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    UNKNOWN_PRODUCT = "UNKNOWN_PRODUCT"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    PAYMENT_UNAVAILABLE = "PAYMENT_UNAVAILABLE"
    ORDER_NOT_CANCELLABLE = "ORDER_NOT_CANCELLABLE"
    ORDER_NOT_CAPTURABLE = "ORDER_NOT_CAPTURABLE"
    ORDER_EXPIRED = "ORDER_EXPIRED"
    ORDER_NOT_AUTHORIZABLE = "ORDER_NOT_AUTHORIZABLE"
    ORDER_NOT_AUTHORIZED = "ORDER_NOT_AUTHORIZED"
    ORDER_NOT_REFUNDABLE = "ORDER_NOT_REFUNDABLE"
    REFUND_EXCEEDS_CAPTURED = "REFUND_EXCEEDS_CAPTURED"
    INVALID_CARD = "INVALID_CARD"
    AUTHORIZATION_EXPIRED = "AUTHORIZATION_EXPIRED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_IN_USE = "IDEMPOTENCY_KEY_IN_USE"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    WEBHOOK_URL_NOT_ALLOWED = "WEBHOOK_URL_NOT_ALLOWED"
    WEBHOOK_ENDPOINT_DELETED = "WEBHOOK_ENDPOINT_DELETED"
    INTERNAL = "INTERNAL"


# Upstream problem codes (snake_case, REST) -> schema error codes.
UPSTREAM_CODES: dict[str, ErrorCode] = {
    "insufficient_stock": ErrorCode.INSUFFICIENT_STOCK,
    "unknown_product": ErrorCode.UNKNOWN_PRODUCT,
    "invalid_quantity": ErrorCode.INVALID_QUANTITY,
    "validation_error": ErrorCode.INVALID_INPUT,
    "idempotency_key_invalid": ErrorCode.INVALID_INPUT,
    "idempotency_key_missing": ErrorCode.INVALID_INPUT,
    "product_not_found": ErrorCode.NOT_FOUND,
    "order_not_found": ErrorCode.NOT_FOUND,
    "order_not_cancellable": ErrorCode.ORDER_NOT_CANCELLABLE,
    "order_not_capturable": ErrorCode.ORDER_NOT_CAPTURABLE,
    "order_expired": ErrorCode.ORDER_EXPIRED,
    "order_not_authorizable": ErrorCode.ORDER_NOT_AUTHORIZABLE,
    "order_not_authorized": ErrorCode.ORDER_NOT_AUTHORIZED,
    "order_not_refundable": ErrorCode.ORDER_NOT_REFUNDABLE,
    "refund_exceeds_captured": ErrorCode.REFUND_EXCEEDS_CAPTURED,
    "invalid_card": ErrorCode.INVALID_CARD,
    "authorization_expired": ErrorCode.AUTHORIZATION_EXPIRED,
    "payments_unavailable": ErrorCode.PAYMENT_UNAVAILABLE,
    "payments_rejected": ErrorCode.PAYMENT_UNAVAILABLE,
    "idempotency_key_reused": ErrorCode.IDEMPOTENCY_KEY_REUSED,
    "idempotency_key_in_use": ErrorCode.IDEMPOTENCY_KEY_IN_USE,
    "webhook_endpoint_not_found": ErrorCode.NOT_FOUND,
    "webhook_delivery_not_found": ErrorCode.NOT_FOUND,
    "webhook_url_not_allowed": ErrorCode.WEBHOOK_URL_NOT_ALLOWED,
    "webhook_endpoint_deleted": ErrorCode.WEBHOOK_ENDPOINT_DELETED,
}


@strawberry.type
class UserError:
    code: ErrorCode
    field: str | None = None
    message: str
    product_id: strawberry.ID | None = None
    requested: int | None = None
    available: int | None = None


def invalid_input(field: str, message: str) -> UserError:
    """INVALID_INPUT about one argument (``field``, the schema's path to it)."""
    return UserError(code=ErrorCode.INVALID_INPUT, field=field, message=message)


def no_such(field: str, what: str) -> list[UserError]:
    """NOT_FOUND for the thing ``field`` names: "There is no such {what}."."""
    return [UserError(code=ErrorCode.NOT_FOUND, field=field, message=f"There is no such {what}.")]


class TopLevelCode(StrEnum):
    """``extensions.code`` of top-level errors."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    BAD_REQUEST = "BAD_REQUEST"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL = "INTERNAL"


class GatewayError(Exception):
    """A refusal the client should see as it is: graphql-core copies ``extensions`` onto the error."""

    def __init__(self, message: str, code: TopLevelCode, **extra: Any) -> None:
        super().__init__(message)
        self.extensions: dict[str, Any] = {"code": code.value, **extra}


class Unauthenticated(GatewayError):
    def __init__(
        self, message: str = "Sign in: this field needs an admin token (Authorization: Bearer …)."
    ) -> None:
        super().__init__(message, TopLevelCode.UNAUTHENTICATED)


class Forbidden(GatewayError):
    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "This field needs the admin role.", TopLevelCode.FORBIDDEN)


class RateLimited(GatewayError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many requests; retry in {retry_after} s.", TopLevelCode.RATE_LIMITED, retryAfter=retry_after
        )


class BadRequest(GatewayError):
    def __init__(self, message: str) -> None:
        super().__init__(message, TopLevelCode.BAD_REQUEST)


class ServiceUnavailable(GatewayError):
    """A part of the system is down, restarting or busy (an upstream answered 503 or could not be reached, a
    database refused for now). Retryable, unlike INTERNAL: ``retryAfter`` says when, in seconds."""

    def __init__(self, message: str = "A service is temporarily unavailable.", retry_after: int = 1) -> None:
        super().__init__(
            f"{message} Retry in {retry_after} s.", TopLevelCode.SERVICE_UNAVAILABLE, retryAfter=retry_after
        )

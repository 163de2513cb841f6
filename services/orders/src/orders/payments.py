"""The payments port (a Protocol) and its HTTP adapter over payments' /payments API.

The adapter retries, with exponential backoff and jitter (stamina), on everything that leaves the outcome
unknown or temporarily undecided: connection errors, timeouts, a dropped connection, 5xx, and 409
``idempotency_key_in_use`` or ``payment_pending`` (the same key, or the payment, still in flight). Every
retry sends the *same* Idempotency-Key, so payments either replays the decided answer or finishes the one
in progress: a retry can never authorize, capture or refund twice. Any other 4xx is payments' decision,
raised as ``PaymentsRefusal`` for the use case to interpret.

The card number passes through ``authorize`` once, in the request body, and nowhere else: it is not logged,
not kept, and never part of an exception.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

import httpx
import stamina
import structlog
from pydantic import BaseModel, SecretStr, ValidationError

from orders.errors import PaymentsRejected, PaymentsUnavailable
from servicekit.callers import caller_headers
from servicekit.errors import current_request_id

log = structlog.get_logger()
M = TypeVar("M", bound=BaseModel)

PaymentStatus = Literal[
    "pending", "authorized", "declined", "captured", "partially_refunded", "refunded", "voided"
]


class PaymentRefundRead(BaseModel):
    refund_id: int
    amount_cents: int
    created_at: datetime


class Payment(BaseModel):
    payment_id: int
    order_id: int
    amount_cents: int
    captured_cents: int = 0
    refunded_cents: int = 0
    status: PaymentStatus
    failure_code: str | None = None
    card_last4: str | None = None
    refunds: list[PaymentRefundRead] = []

    @property
    def refundable_cents(self) -> int:
        return self.captured_cents - self.refunded_cents if self.status in CAPTURED_STATUSES else 0


CAPTURED_STATUSES = ("captured", "partially_refunded", "refunded")


class RefundMade(BaseModel):
    refund_id: int
    amount_cents: int
    created_at: datetime
    payment: Payment


@dataclass
class PaymentsRefusal(Exception):
    """Payments decided against the request (a 4xx other than "in flight"): its status, code and problem."""

    status: int
    code: str | None
    problem: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"payments refused: {self.status} {self.code or ''}".strip()


class PaymentsClient(Protocol):
    """Each call answers payments' decided outcome, raises PaymentsRefusal for a decided refusal, and
    PaymentsUnavailable when payments could not be reached or did not decide in time."""

    async def authorize(
        self, *, order_id: int, amount_cents: int, card_number: str, idempotency_key: str
    ) -> Payment: ...

    async def capture(self, *, payment_id: int, idempotency_key: str) -> Payment: ...

    async def void(self, *, payment_id: int, idempotency_key: str) -> Payment: ...

    async def refund(self, *, payment_id: int, amount_cents: int, idempotency_key: str) -> RefundMade: ...

    async def list_for_order(self, order_id: int) -> list[Payment]: ...


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    timeout_s: float = 15.0  # all attempts together
    wait_initial_s: float = 0.1
    wait_max_s: float = 2.0
    wait_jitter_s: float = 0.2


# 409s that mean "not decided yet": the key is in flight, or the payment is still with the processor.
NOT_DECIDED = ("idempotency_key_in_use", "payment_pending")


class _NotDecidedYet(Exception):
    """payments answered, but not with a decision (5xx, or 409 while the key is in flight)."""

    def __init__(self, status: int, code: str | None) -> None:
        super().__init__(f"payments answered {status} {code or ''}".strip())
        self.status = status
        self.code = code


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _headers(idempotency_key: str | None, token: SecretStr | None) -> dict[str, str]:
    """Orders' credential, the key, and the request id of the request that calls, so both services log one
    request id."""
    headers = caller_headers(token)
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    if request_id := current_request_id():
        headers["X-Request-ID"] = request_id
    return headers


class HttpPaymentsClient:
    """PaymentsClient over REST. ``http`` is the app's one shared client (base_url, timeouts, limits)."""

    def __init__(
        self, http: httpx.AsyncClient, retry: RetryPolicy | None = None, *, token: SecretStr | None = None
    ) -> None:
        self._http = http
        self._retry = retry or RetryPolicy()
        self._token = token  # orders' own credential (ORDERS_SERVICE_TOKEN), sent on every call

    async def authorize(
        self, *, order_id: int, amount_cents: int, card_number: str, idempotency_key: str
    ) -> Payment:
        body = {"order_id": order_id, "amount_cents": amount_cents, "card_number": card_number}
        return _parse(Payment, await self._call("POST", "/payments", body, idempotency_key))

    async def capture(self, *, payment_id: int, idempotency_key: str) -> Payment:
        answer = await self._call("POST", f"/payments/{payment_id}/capture", {}, idempotency_key)
        return _parse(Payment, answer)

    async def void(self, *, payment_id: int, idempotency_key: str) -> Payment:
        answer = await self._call("POST", f"/payments/{payment_id}/void", {}, idempotency_key)
        return _parse(Payment, answer)

    async def refund(self, *, payment_id: int, amount_cents: int, idempotency_key: str) -> RefundMade:
        body = {"amount_cents": amount_cents}
        answer = await self._call("POST", f"/payments/{payment_id}/refunds", body, idempotency_key)
        return _parse(RefundMade, answer)

    async def list_for_order(self, order_id: int) -> list[Payment]:
        answer = await self._call("GET", "/payments", None, None, params={"order_id": order_id, "limit": 100})
        if not isinstance(answer, list):
            raise PaymentsRejected("Payments answered a list request with something that is not a list.")
        return [_parse(Payment, item) for item in answer]

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        idempotency_key: str | None,
        *,
        params: dict[str, Any] | None = None,
    ) -> Any:
        retry = self._retry
        try:
            async for attempt in stamina.retry_context(
                on=(httpx.TransportError, _NotDecidedYet),
                attempts=retry.attempts,
                timeout=retry.timeout_s,
                wait_initial=retry.wait_initial_s,
                wait_max=retry.wait_max_s,
                wait_jitter=retry.wait_jitter_s,
            ):
                with attempt:
                    if attempt.num > 1:
                        log.info("payments_retry", path=path, key=idempotency_key, attempt=attempt.num)
                    response = await self._http.request(
                        method, path, json=body, params=params, headers=_headers(idempotency_key, self._token)
                    )
                    problem = _problem(response) if response.is_error else {}
                    code = problem.get("code") if isinstance(problem.get("code"), str) else None
                    if response.status_code >= 500 or (response.status_code == 409 and code in NOT_DECIDED):
                        raise _NotDecidedYet(response.status_code, code)
        except (httpx.TransportError, _NotDecidedYet) as exc:
            # repr of a transport error names the error, never the request body (which may hold a card).
            log.warning("payments_unavailable", path=path, key=idempotency_key, error=type(exc).__name__)
            raise PaymentsUnavailable(
                "Payments could not be reached or did not decide in time. Retry: it cannot charge twice.",
                headers={"Retry-After": "5"},
            ) from None
        if response.is_error:
            log.info("payments_refused", path=path, status=response.status_code, code=code)
            raise PaymentsRefusal(response.status_code, code, problem)
        try:
            return response.json()
        except ValueError:
            log.error("payments_answer_malformed", path=path, status=response.status_code)
            raise PaymentsRejected("Payments answered with something that is not JSON.") from None


def _parse(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError:
        log.error("payments_answer_malformed", expected=model.__name__)
        raise PaymentsRejected(f"Payments answered with something that is not a {model.__name__}.") from None

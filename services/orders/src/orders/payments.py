"""The payments port (a Protocol) and its HTTP adapter.

The adapter retries, with exponential backoff and jitter (stamina), on everything that leaves the outcome
unknown or temporarily undecided: connection errors, timeouts, a dropped connection, 5xx, and 409 (the same
key still in flight at payments). Every retry sends the *same* Idempotency-Key, so payments either replays the
decided charge or finishes the one in progress: a retry can never make a second charge.
"""

from dataclasses import dataclass
from typing import Literal, Protocol

import httpx
import stamina
import structlog
from pydantic import BaseModel, ValidationError

from orders.errors import PaymentsRejected, PaymentsUnavailable
from servicekit.errors import current_request_id

log = structlog.get_logger()


@dataclass(frozen=True)
class Charge:
    charge_id: int
    succeeded: bool
    failure_code: str | None = None


class PaymentsClient(Protocol):
    async def charge(self, *, order_id: int, amount_cents: int, idempotency_key: str) -> Charge:
        """The decided charge for this key (succeeded or declined). Raises PaymentsUnavailable when payments
        could not be reached or did not decide in time, PaymentsRejected when it refused the request."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    timeout_s: float = 15.0  # all attempts together
    wait_initial_s: float = 0.1
    wait_max_s: float = 2.0
    wait_jitter_s: float = 0.2


class _ChargeAnswer(BaseModel):
    charge_id: int
    status: Literal["succeeded", "failed"]
    failure_code: str | None = None


class _NotDecidedYet(Exception):
    """payments answered, but not with a decision (5xx, or 409 while the key is in flight)."""

    def __init__(self, status: int, code: str | None) -> None:
        super().__init__(f"payments answered {status} {code or ''}".strip())
        self.status = status
        self.code = code


def _problem_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _headers(idempotency_key: str) -> dict[str, str]:
    """The key, and the request id of the capture that calls, so both services log one request id."""
    headers = {"Idempotency-Key": idempotency_key}
    if request_id := current_request_id():
        headers["X-Request-ID"] = request_id
    return headers


class HttpPaymentsClient:
    """PaymentsClient over REST. ``http`` is the app's one shared client (base_url, timeouts, limits)."""

    def __init__(self, http: httpx.AsyncClient, retry: RetryPolicy | None = None) -> None:
        self._http = http
        self._retry = retry or RetryPolicy()

    async def charge(self, *, order_id: int, amount_cents: int, idempotency_key: str) -> Charge:
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
                        log.info(
                            "payments_retry", order_id=order_id, key=idempotency_key, attempt=attempt.num
                        )
                    response = await self._http.post(
                        "/charges",
                        json={"order_id": order_id, "amount_cents": amount_cents},
                        headers=_headers(idempotency_key),
                    )
                    code = _problem_code(response) if response.is_error else None
                    if response.status_code >= 500 or (
                        response.status_code == 409 and code != "order_already_charged"
                    ):
                        raise _NotDecidedYet(response.status_code, code)
        except (httpx.TransportError, _NotDecidedYet) as exc:
            log.warning("payments_unavailable", order_id=order_id, key=idempotency_key, error=repr(exc))
            raise PaymentsUnavailable(
                "Payments could not be reached or did not decide in time; the order is unchanged. Retry the "
                "capture: it cannot charge twice.",
                headers={"Retry-After": "5"},
            ) from exc

        if response.status_code == 409:
            # The order is already paid by a charge made under another key: that charge is the outcome.
            charge_id = response.json().get("charge_id")
            if isinstance(charge_id, int):
                return Charge(charge_id=charge_id, succeeded=True)
        if response.status_code not in (200, 201):
            log.error("payments_rejected", order_id=order_id, status=response.status_code, code=code)
            raise PaymentsRejected(
                f"Payments refused the charge ({response.status_code} {code or 'error'}).",
                payments_status=response.status_code,
                payments_code=code,
            )
        try:
            answer = _ChargeAnswer.model_validate_json(response.content)
        except ValidationError as exc:
            log.error("payments_answer_malformed", order_id=order_id, status=response.status_code)
            raise PaymentsRejected("Payments answered with something that is not a charge.") from exc
        return Charge(
            charge_id=answer.charge_id,
            succeeded=answer.status == "succeeded",
            failure_code=answer.failure_code,
        )

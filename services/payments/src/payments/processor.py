"""The card processor port, and a simulated processor behind it (the adapter pattern).

The simulated processor decides by card, like a real processor's test mode:

    4000 0000 0000 0002  → declined, failure code ``card_declined``
    4000 0000 0000 9995  → declined, failure code ``insufficient_funds``
    any other Luhn-valid number (e.g. 4242 4242 4242 4242) → authorized

Capture, void and refund of a valid authorization always succeed; ``latency_s`` makes every call slow.
"""

import asyncio
from dataclasses import dataclass
from typing import Protocol

from payments.cards import Card

TEST_DECLINES = {"4000000000000002": "card_declined", "4000000000009995": "insufficient_funds"}


@dataclass(frozen=True)
class AuthorizationOutcome:
    authorized: bool
    failure_code: str | None = None


class ProcessorUnreachable(Exception):
    """The processor's answer is unknown (timeout, connection lost). Asking again with the same reference
    is safe: the processor returns the first outcome and never moves money twice."""


class PaymentProcessor(Protocol):
    """Every call carries a reference that makes asking again safe, like a real processor's own
    idempotency keys: ``authorization`` names one authorization (``payment-{id}``), ``reference`` one
    refund (``refund-{id}``). A call interrupted by a crash can therefore be resumed, never repeated."""

    async def authorize(self, authorization: str, card: Card, amount_cents: int) -> AuthorizationOutcome:
        """Hold ``amount_cents`` on the card, or decline with a failure code."""
        ...

    async def capture(self, authorization: str, amount_cents: int) -> None:
        """Take ``amount_cents`` (at most the authorized amount) of the authorization."""
        ...

    async def void(self, authorization: str) -> None:
        """Release an authorization that was not captured."""
        ...

    async def refund(self, reference: str, authorization: str, amount_cents: int) -> None:
        """Give back ``amount_cents`` of what the authorization captured."""
        ...


class SimulatedProcessor:
    """Stateless: every answer follows from the card, so asking again about the same authorization always
    gives the same answer and holds nothing twice."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s

    async def _wait(self) -> None:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)

    async def authorize(self, authorization: str, card: Card, amount_cents: int) -> AuthorizationOutcome:
        await self._wait()
        if code := TEST_DECLINES.get(card.number):
            return AuthorizationOutcome(authorized=False, failure_code=code)
        return AuthorizationOutcome(authorized=True)

    async def capture(self, authorization: str, amount_cents: int) -> None:
        await self._wait()

    async def void(self, authorization: str) -> None:
        await self._wait()

    async def refund(self, reference: str, authorization: str, amount_cents: int) -> None:
        await self._wait()

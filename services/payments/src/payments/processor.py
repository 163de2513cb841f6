"""The card processor port, and a simulated processor behind it (the adapter pattern).

Test amounts, in the spirit of Stripe's test cards, decline whatever the success rate:

    amount_cents % 100 == 2  (e.g. 1002)  → declined, failure code ``card_declined``
    amount_cents % 100 == 5  (e.g. 2005)  → declined, failure code ``insufficient_funds``

Any other amount succeeds, or with ``success_rate`` below 1 is declined (``card_declined``) at that rate.
"""

import asyncio
import random
from dataclasses import dataclass
from typing import Protocol

TEST_DECLINES = {2: "card_declined", 5: "insufficient_funds"}


@dataclass(frozen=True)
class ProcessorOutcome:
    succeeded: bool
    failure_code: str | None = None


class PaymentProcessor(Protocol):
    async def charge(self, reference: str, amount_cents: int) -> ProcessorOutcome:
        """Charge ``amount_cents`` once per ``reference``.

        Like a real processor's own idempotency keys: asking again with the same reference returns the same
        outcome and never charges twice, so a charge interrupted by a crash can be resumed safely.
        """
        ...


class SimulatedProcessor:
    def __init__(self, success_rate: float = 1.0, latency_s: float = 0.0) -> None:
        self.success_rate = success_rate
        self.latency_s = latency_s

    async def charge(self, reference: str, amount_cents: int) -> ProcessorOutcome:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if code := TEST_DECLINES.get(amount_cents % 100):
            return ProcessorOutcome(succeeded=False, failure_code=code)
        # Seeded by the reference, so asking again about the same charge gives the same answer.
        if random.Random(reference).random() >= self.success_rate:
            return ProcessorOutcome(succeeded=False, failure_code="card_declined")
        return ProcessorOutcome(succeeded=True)

"""Group commit for POST /orders: the orders that arrive while one batch is in the database go together as the
next one, in one statement and one commit (see repository.PLACE_ORDERS for the why)."""

import asyncio
import contextlib
import contextvars
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as trace_context
from sqlalchemy.ext.asyncio import AsyncEngine

from orders import metrics, repository
from orders.repository import Placement, PlaceOrderResult
from servicekit.db import autocommit


@dataclass
class _Waiting:
    placement: Placement
    future: asyncio.Future[PlaceOrderResult] = field(repr=False)
    # The request's trace context: the batch's database span joins the trace of the order that opened it.
    traced: trace_context.Context = field(default_factory=trace_context.get_current, repr=False)


class OrderBatcher:
    """One batch in flight per process; the next gathers meanwhile (at most ``max_batch`` orders).

    No timer: an order that finds nothing in flight starts a batch at once. ``place`` answers each order's
    own outcome; if the batch's statement fails, every order of it gets that error (nothing was written).
    """

    def __init__(self, engine: AsyncEngine, *, reservation_s: float, max_batch: int) -> None:
        self._engine = engine
        self._reservation_s = reservation_s
        self._max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._worker: asyncio.Task[None] | None = None

    async def place(
        self, lines: Sequence[tuple[int, int]], idempotency_key: str | None, customer: dict[str, Any] | None
    ) -> PlaceOrderResult:
        future: asyncio.Future[PlaceOrderResult] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(Placement(lines, idempotency_key, customer), future))
        if self._worker is None:
            # A context of its own: the worker serves many requests and must not log under the first one's id.
            self._worker = asyncio.create_task(self._drain(), context=contextvars.Context())
        return await future

    async def place_batch(self, placements: Sequence[Placement]) -> list[PlaceOrderResult]:
        """One batch, as given, in one statement (the worker's step; a test can build a batch exactly)."""
        # Autocommit: the one statement is the whole transaction, and its commit is the batch's.
        async with autocommit(self._engine) as conn:
            if len(placements) == 1:
                # A batch of one (an idle database) is exactly the single path, whose statement is cheaper
                # than the batch function's for one order: group commit costs nothing at low concurrency.
                one = placements[0]
                results = [
                    await repository.place_order(
                        conn,
                        one.lines,
                        one.idempotency_key,
                        reservation_s=self._reservation_s,
                        customer=one.customer,
                    )
                ]
            else:
                results = await repository.place_orders(conn, placements, reservation_s=self._reservation_s)
        metrics.ORDER_BATCH_SIZE.observe(len(placements))
        return results

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                attached = trace_context.attach(batch[0].traced)
                try:
                    results = await self.place_batch([waiting.placement for waiting in batch])
                except Exception as exc:
                    for waiting in batch:
                        if not waiting.future.done():
                            waiting.future.set_exception(exc)
                    continue
                except BaseException:  # cancelled (shutdown): its requests must not wait forever
                    for waiting in batch:
                        waiting.future.cancel()
                    raise
                finally:
                    trace_context.detach(attached)
                for waiting, result in zip(batch, results, strict=True):
                    if not waiting.future.done():  # its request may have been cancelled meanwhile
                        waiting.future.set_result(result)
        finally:
            self._worker = None

    async def close(self) -> None:
        """Stop the worker (at shutdown); orders still waiting are cancelled, never half placed."""
        worker = self._worker
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        for waiting in self._waiting:
            waiting.future.cancel()
        self._waiting.clear()

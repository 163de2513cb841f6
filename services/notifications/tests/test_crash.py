"""A worker killed with SIGKILL in the middle of a batch, then restarted: every effect happens, once."""

import os
import signal
import uuid


async def test_a_worker_killed_mid_batch_loses_no_effect_and_repeats_none(
    producer, mail_sink, workers, receiver, api, endpoints, register_endpoint, db, wait, settled, ids, order
):
    await register_endpoint(api, receiver, endpoints, ["order.placed", "order.paid"])
    mail_sink.delay_s = 0.03  # a slow mail server: the batch is still going when the kill comes
    product = ids()
    emails, events = set(), []
    for n in range(30):
        order_id, email = ids(), f"crash-{uuid.uuid4().hex[:8]}@example.com"
        emails.add(email)
        items = [(product, 1 + n % 3, 500)]
        events.append(await producer.emit("order.placed", order_id, order(order_id, email, items)))
        events.append(
            await producer.emit("order.paid", order_id, order(order_id, email, items, captured_cents=0))
        )

    first = workers.spawn(mail_sink.url)
    await wait(lambda: _true(len(mail_sink.to(emails)) >= 12), within_s=60)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    sent_before_restart = len(mail_sink.to(emails))
    assert sent_before_restart < len(events), "the kill came too late to interrupt anything"

    workers.spawn(mail_sink.url)
    # email + webhooks for every event, sales for the paid ones
    await wait(lambda: settled(db, events, ["email", "webhooks"]), within_s=120)
    await wait(lambda: settled(db, events[1::2], ["sales"]), within_s=60)
    await wait(lambda: _true(len(receiver.accepted) >= len(events)), within_s=60)

    # Emails: one recorded per event; the sink got each event's message, a repeat only for the (at most
    # one) message in flight at the kill, and then with the same Message-ID.
    recorded = await db.fetch(
        "SELECT event_id::text, message_id FROM notifications.emails WHERE event_id = ANY($1::uuid[])", events
    )
    assert sorted(r["event_id"] for r in recorded) == sorted(events)
    received = mail_sink.to(emails)
    expected_ids = {f"<{e}@lockstock.local>" for e in events}
    assert {m.message_id for m in received} == expected_ids
    assert len(received) - len(expected_ids) <= 1
    # Webhooks: every event delivered and verified; the receiver deduped any repeat by webhook-id.
    assert set(receiver.accepted) == set(events)
    assert all(r["verified"] for r in receiver.requests)
    # Sales: counted exactly once despite the crash.
    units, revenue = await db.fetchrow(
        "SELECT sum(units), sum(revenue_cents) FROM notifications.sales_daily WHERE product_id = $1", product
    )
    assert units == sum(1 + n % 3 for n in range(30))
    assert revenue == units * 500
    done = await db.fetchval(
        "SELECT count(*) FROM notifications.jobs WHERE event_id = ANY($1::uuid[]) AND state = 'done'", events
    )
    assert done == len(events) * 2 + len(events) // 2


async def _true(value: bool) -> bool:
    return value

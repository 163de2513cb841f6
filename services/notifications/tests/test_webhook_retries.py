"""Webhook deliveries: Standard Webhooks signatures, the retry schedule (on a fast clock), the log."""

import itertools
from datetime import datetime

from notifications.clock import FastClock
from notifications.retries import JITTER, MAX_ATTEMPTS, RETRY_DELAYS_S


def _gaps(log: list[dict]) -> list[float]:
    times = [datetime.fromisoformat(a["attempted_at"]) for a in log]
    return [(b - a).total_seconds() for a, b in itertools.pairwise(times)]


async def _delivery(api, endpoint_id: int, event_id: str) -> dict:
    deliveries = (await api.get(f"/webhooks/endpoints/{endpoint_id}/deliveries")).json()
    return next((d for d in deliveries if d["event_id"] == event_id), {})


async def test_a_receiver_that_fails_then_times_out_then_succeeds_gets_it_on_the_schedule(
    producer, mail_sink, workers, receiver, api, endpoints, register_endpoint, wait, ids, order
):
    speed = 100  # 5 s of schedule pass in 50 ms, 5 min in 3 s
    endpoint_id = await register_endpoint(api, receiver, endpoints, ["order.paid"])
    receiver.script = ["fail", "slow"]  # then ok
    order_id = ids()
    event_id = await producer.emit("order.paid", order_id, order(order_id, None, captured_cents=1_000))
    with workers.start(mail_sink.url, clock=FastClock(speed), webhook_timeout_s=0.5):

        async def succeeded() -> bool:
            return (await _delivery(api, endpoint_id, event_id)).get("status") == "succeeded"

        await wait(succeeded, within_s=30)

    delivery = await _delivery(api, endpoint_id, event_id)
    log = delivery["attempt_log"]
    assert [(a["attempt"], a["outcome"], a["response_code"]) for a in log] == [
        (1, "retrying", 500),
        (2, "retrying", None),
        (3, "succeeded", 204),
    ]
    assert "timed out" in log[1]["error"]
    assert delivery["attempts"] == 3
    assert delivery["next_attempt_at"] is None
    # Each wait is the schedule's, within its jitter; the upper bound allows for the poll interval and
    # the timed-out attempt itself, at the clock's speed.
    slack = 5 * speed  # generous: a loaded machine may be seconds late; the lower bound is the point
    for gap, nominal in zip(_gaps(log), RETRY_DELAYS_S, strict=False):
        assert nominal * (1 - JITTER) <= gap <= nominal * (1 + JITTER) + slack, (gap, nominal)
    # The receiver saw three requests for one webhook-id, each with a signature that verifies.
    mine = [r for r in receiver.requests if r["id"] == event_id]
    assert [r["behaviour"] for r in mine] == ["fail", "slow", "ok"]
    assert all(r["verified"] for r in mine)
    assert receiver.accepted[event_id]["data"]["order_id"] == order_id
    assert receiver.accepted[event_id]["type"] == "order.paid"


async def test_a_delivery_is_failed_after_the_last_attempt_and_can_be_redelivered(
    producer, mail_sink, workers, receiver, api, endpoints, register_endpoint, wait, ids, order
):
    endpoint_id = await register_endpoint(api, receiver, endpoints, ["order.cancelled"])
    receiver.script = ["fail"] * MAX_ATTEMPTS
    order_id = ids()
    data = order(order_id, None, previous_status="PENDING")
    event_id = await producer.emit("order.cancelled", order_id, data)
    # About 27½ hours of schedule in a few seconds.
    speed = 30_000
    with workers.start(mail_sink.url, clock=FastClock(speed)):

        async def status_is(expected: str) -> bool:
            return (await _delivery(api, endpoint_id, event_id)).get("status") == expected

        await wait(lambda: status_is("failed"), within_s=60)
        delivery = await _delivery(api, endpoint_id, event_id)
        assert delivery["attempts"] == MAX_ATTEMPTS
        outcomes = [a["outcome"] for a in delivery["attempt_log"]]
        assert outcomes == ["retrying"] * (MAX_ATTEMPTS - 1) + ["failed"]
        for gap, nominal in zip(_gaps(delivery["attempt_log"]), RETRY_DELAYS_S, strict=True):
            assert gap >= nominal * (1 - JITTER), (gap, nominal)
        total, nominal_total = sum(_gaps(delivery["attempt_log"])), sum(RETRY_DELAYS_S)
        slack = 2 * speed * len(RETRY_DELAYS_S)  # the poll interval and the work, at the clock's speed
        assert nominal_total * (1 - JITTER) <= total <= nominal_total * (1 + JITTER) + slack, total / 3600

        redelivered = await api.post(f"/webhooks/deliveries/{delivery['id']}/redeliver")
        assert redelivered.status_code == 200
        assert redelivered.json()["status"] == "pending"
        await wait(lambda: status_is("succeeded"), within_s=30)
    final = await _delivery(api, endpoint_id, event_id)
    assert final["attempts"] == MAX_ATTEMPTS + 1
    assert final["attempt_log"][-1]["outcome"] == "succeeded"
    assert set(receiver.accepted) >= {event_id}


async def test_deleting_an_endpoint_stops_its_deliveries_and_keeps_its_log(
    producer, mail_sink, workers, receiver, api, endpoints, register_endpoint, wait, ids, order
):
    endpoint_id = await register_endpoint(api, receiver, endpoints, ["*"])
    receiver.script = ["fail"] * 3
    order_id = ids()
    event_id = await producer.emit("order.expired", order_id, order(order_id, None))
    with workers.start(mail_sink.url):

        async def attempted() -> bool:
            deliveries = (await api.get(f"/webhooks/endpoints/{endpoint_id}/deliveries")).json()
            return any(d["event_id"] == event_id and d["attempts"] >= 1 for d in deliveries)

        await wait(attempted, within_s=30)
        assert (await api.delete(f"/webhooks/endpoints/{endpoint_id}")).status_code == 204
    delivery = await _delivery(api, endpoint_id, event_id)
    assert delivery["status"] == "failed"
    assert delivery["last_error"] == "endpoint deleted"
    response = await api.post(f"/webhooks/deliveries/{delivery['id']}/redeliver")
    assert response.status_code == 409
    assert response.json()["code"] == "webhook_endpoint_deleted"

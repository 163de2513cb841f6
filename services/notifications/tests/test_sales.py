"""Sales analytics are kept from events alone, and agree with a direct SQL sum over those events."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifications.worker import split_cents

# What happens to an order after it is placed.
FATES = st.sampled_from(["placed", "expired", "cancelled", "paid", "refunded", "paid_then_cancelled"])
ORDERS = st.lists(
    st.tuples(
        FATES,
        st.lists(
            st.tuples(st.integers(0, 3), st.integers(1, 4), st.integers(0, 5_000)),
            min_size=1,
            max_size=3,
            unique_by=lambda item: item[0],
        ),
        st.integers(0, 3),  # the day (0..3 days ago)
        st.lists(st.integers(1, 10_000), max_size=3),  # refunds requested (capped at what is left)
    ),
    min_size=1,
    max_size=6,
)


async def _emit_lifecycle(producer, order, ids, fate, items, day, refunds) -> list[str]:
    order_id = ids()
    at = datetime.now(UTC).replace(hour=12) - timedelta(days=day)
    data = order(order_id, None, items)
    total = data["total_cents"]
    events = [await producer.emit("order.placed", order_id, data, occurred_at=at)]
    if fate == "expired":
        events.append(await producer.emit("order.expired", order_id, data, occurred_at=at))
    elif fate == "cancelled":
        events.append(
            await producer.emit(
                "order.cancelled", order_id, {**data, "previous_status": "PENDING"}, occurred_at=at
            )
        )
    elif fate in {"paid", "refunded", "paid_then_cancelled"}:
        events.append(
            await producer.emit("order.paid", order_id, {**data, "captured_cents": total}, occurred_at=at)
        )
        refunded = 0
        if fate == "refunded":
            for n, wanted in enumerate(refunds):
                amount = min(wanted, total - refunded)
                if amount < 1:
                    break
                refunded += amount
                body = {
                    **data,
                    "refund_id": n + 1,
                    "amount_cents": amount,
                    "refunded_cents": refunded,
                    "status": "REFUNDED" if refunded == total else "PAID",
                }
                events.append(await producer.emit("order.refunded", order_id, body, occurred_at=at))
        if fate == "paid_then_cancelled":
            body = {**data, "previous_status": "PAID", "refund_cents": total}
            events.append(await producer.emit("order.cancelled", order_id, body, occurred_at=at))
    return events


def test_a_refund_is_split_over_the_items_exactly():
    assert split_cents(100, [1, 1, 1]) == [34, 33, 33]
    assert sum(split_cents(9_999, [3, 700, 11])) == 9_999
    assert split_cents(5, [0, 0]) == [5, 0]


@pytest.fixture
def sales_worker(mail_sink, workers):
    """One worker for all of the property's examples (fixtures are set up once per test, not per example)."""
    with workers.start(mail_sink.url) as server:
        yield server


@given(orders=ORDERS)
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
async def test_sales_totals_equal_a_direct_sum_over_the_events(
    orders, sales_worker, producer, db, wait, settled, ids, order
):
    products = [ids() for _ in range(4)]  # this example's own products
    events: list[str] = []
    for fate, items, day, refunds in orders:
        priced = [(products[slot], qty, price) for slot, qty, price in items]
        events += await _emit_lifecycle(producer, order, ids, fate, priced, day, refunds)
    await wait(lambda: settled(db, events, ["sales"]), within_s=60)

    kept = await db.fetch(
        "SELECT day, sum(units) AS units, sum(revenue_cents) AS revenue, sum(refunds_cents) AS refunds"
        " FROM notifications.sales_daily WHERE product_id = ANY($1) GROUP BY day ORDER BY day",
        products,
    )
    direct = await db.fetch(
        """
        WITH mine AS (
            SELECT e.* FROM outbox.events e WHERE e.event_id = ANY($1::uuid[])
        ), sold AS (
            SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, (i->>'qty')::bigint AS units,
                   (i->>'qty')::bigint * (i->>'price_cents')::bigint AS revenue, 0::bigint AS refunds
              FROM mine, jsonb_array_elements(data->'items') i WHERE type = 'order.paid'
            UNION ALL
            SELECT (occurred_at AT TIME ZONE 'UTC')::date, 0, 0,
                   coalesce((data->>'amount_cents')::bigint, (data->>'refund_cents')::bigint, 0)
              FROM mine WHERE type IN ('order.refunded', 'order.cancelled')
        )
        SELECT day, sum(units) AS units, sum(revenue) AS revenue, sum(refunds) AS refunds
          FROM sold GROUP BY day HAVING sum(units) + sum(revenue) + sum(refunds) > 0 ORDER BY day
        """,
        events,
    )
    kept_days = [tuple(r) for r in kept if r["units"] or r["revenue"] or r["refunds"]]
    assert kept_days == [tuple(r) for r in direct]


async def test_the_sales_report_covers_30_days_with_totals_and_top_products(
    producer, sales_worker, notifications_api_url, as_gateway, db, wait, settled, ids, order
):
    product = ids()
    order_id = ids()
    data = order(order_id, None, [(product, 3, 10_000_000)])  # large enough to top the report
    paid = await producer.emit("order.paid", order_id, {**data, "captured_cents": data["total_cents"]})
    await wait(lambda: settled(db, [paid], ["sales"]), within_s=30)
    async with httpx.AsyncClient(base_url=notifications_api_url, headers=as_gateway, timeout=30) as client:
        report = (await client.get("/sales")).json()
    assert len(report["days"]) == 30
    assert report["days"][-1]["day"] == datetime.now(UTC).date().isoformat()
    assert report["revenue_cents"] == sum(d["revenue_cents"] for d in report["days"])
    assert report["top_products"][0] == {
        "product_id": product,
        "units": 3,
        "revenue_cents": 30_000_000,
        "refunds_cents": 0,
    }


@pytest.mark.parametrize(
    "query",
    [
        {"to": "0001-01-01"},
        {"to": "0001-01-15"},
        {"from": "2026-02-01", "to": "2026-01-01"},
        {"from": "0001-01-01"},
    ],
)
async def test_a_date_range_no_report_can_cover_is_a_422_not_a_500(api, query) -> None:
    response = await api.get("/sales", params=query)
    assert response.status_code == 422, response.text
    assert response.json()["code"] in {"invalid_date_range", "validation_error"}

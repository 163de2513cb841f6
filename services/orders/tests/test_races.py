"""Money steps racing each other over real HTTP and real connections, 20 times each; after one reconciler
pass, ADR 0004's invariants hold (assert_money_and_stock_invariants)."""

import asyncio
import random

import pytest

from devstack.testing import wait_until

ROUNDS = 20


@pytest.fixture(scope="module")
def slow_pair(service_database_urls, credential_settings):
    """Payments whose processor takes 50 ms a call (so the racing requests really overlap), and an orders app
    of its own in front of it."""
    from devstack.testing import LiveServer
    from orders.app import create_app as create_orders_app
    from orders.settings import OrdersSettings
    from payments.app import create_app as create_payments_app
    from payments.settings import PaymentsSettings

    payments = create_payments_app(
        PaymentsSettings(
            database_url=service_database_urls["payments"],
            **credential_settings("payments"),
            processor_latency_s=0.05,
        )
    )
    with LiveServer(payments) as payments_server:
        orders = create_orders_app(
            OrdersSettings(
                database_url=service_database_urls["orders"],
                **credential_settings("orders"),
                payments_url=payments_server.url,
                db_pool_size=20,
                expiry_sweep_interval_s=3_600,
                reconcile_interval_s=3_600,
            )
        )
        with LiveServer(orders) as orders_server:
            yield orders_server.url, payments_server.url


async def jittered(coro, up_to_s: float):
    await asyncio.sleep(random.uniform(0, up_to_s))  # to vary who goes first, not to wait for anything
    return await coro


async def test_authorize_racing_cancel(slow_pair, api, db, make_product, reconciler, invariants):
    orders_url, payments_url = slow_pair
    product = await make_product(stock=ROUNDS, price_cents=1_100)
    async with api(orders_url) as orders:
        order_ids = [(await orders.place(product))["orderId"] for _ in range(ROUNDS)]

        results = await asyncio.gather(
            *(
                asyncio.gather(
                    jittered(orders.authorize(order_id), 0.03), jittered(orders.cancel(order_id), 0.25)
                )
                for order_id in order_ids
            )
        )

        for authorize, cancel in results:
            assert cancel.status_code == 200, cancel.text
            assert cancel.json()["status"] == "CANCELLED"
            assert (authorize.status_code, authorize.json().get("code")) in {
                (200, None),
                (409, "order_not_authorizable"),
            }, authorize.text
        await reconciler.reconcile(payments_url)
        assert {(await orders.get(o))["status"] for o in order_ids} == {"CANCELLED"}
    await invariants(db, {product: ROUNDS})


async def test_capture_racing_cancel(slow_pair, api, db, make_product, reconciler, invariants):
    orders_url, payments_url = slow_pair
    product = await make_product(stock=ROUNDS, price_cents=1_300)
    async with api(orders_url) as orders:
        order_ids = [(await orders.place(product))["orderId"] for _ in range(ROUNDS)]
        for order_id in order_ids:
            assert (await orders.authorize(order_id)).json()["status"] == "AUTHORIZED"

        results = await asyncio.gather(
            *(
                asyncio.gather(
                    jittered(orders.capture(order_id), 0.03), jittered(orders.cancel(order_id), 0.25)
                )
                for order_id in order_ids
            )
        )

        for capture, cancel in results:
            assert cancel.status_code == 200, cancel.text
            assert (capture.status_code, capture.json().get("code")) in {
                (200, None),
                (409, "order_not_capturable"),
            }, capture.text
        await reconciler.reconcile(payments_url)
        finals = [await orders.get(o) for o in order_ids]
    assert {o["status"] for o in finals} == {"CANCELLED"}
    assert all(o["captured_cents"] == o["refunded_cents"] for o in finals)
    await invariants(db, {product: ROUNDS})


async def test_authorize_racing_expiry(
    service_database_urls, credential_settings, api, db, make_product, reconciler, invariants
):
    """Reservations of one second, authorizations sent around the deadline, a sweeper every 50 ms in the app
    and a second one in the test: each order ends AUTHORIZED or EXPIRED, and an expired one holds no money."""
    from devstack.testing import LiveServer
    from orders.app import create_app as create_orders_app
    from orders.settings import OrdersSettings
    from payments.app import create_app as create_payments_app
    from payments.settings import PaymentsSettings

    payments = create_payments_app(
        PaymentsSettings(
            database_url=service_database_urls["payments"],
            **credential_settings("payments"),
            processor_latency_s=0.1,
        )
    )
    product = await make_product(stock=ROUNDS, price_cents=1_700)
    with LiveServer(payments) as payments_server:
        settings = OrdersSettings(
            database_url=service_database_urls["orders"],
            **credential_settings("orders"),
            payments_url=payments_server.url,
            reservation_ttl_s=1,
            expiry_sweep_interval_s=0.05,
            reconcile_interval_s=3_600,
        )
        with LiveServer(create_orders_app(settings)) as orders_server:
            async with api(orders_server.url) as orders:
                order_ids = [(await orders.place(product))["orderId"] for _ in range(ROUNDS)]

                async def sweep_until_done() -> None:
                    async def settled() -> bool:
                        return not await db.fetchval(
                            "SELECT count(*) FROM orders.orders WHERE id = ANY($1) AND status = 'PENDING'",
                            order_ids,
                        )

                    while not await settled():
                        await reconciler.sweep()

                authorizations, _ = await asyncio.gather(
                    asyncio.gather(*(jittered(orders.authorize(o), 1.2) for o in order_ids)),
                    jittered(sweep_until_done(), 0.8),
                )

                for response in authorizations:
                    assert (response.status_code, response.json().get("code")) in {
                        (200, None),
                        (409, "order_expired"),
                    }, response.text
                await reconciler.reconcile(payments_server.url)
                finals = {o: (await orders.get(o))["status"] for o in order_ids}
    assert set(finals.values()) <= {"AUTHORIZED", "EXPIRED"}
    for order_id, response in zip(order_ids, authorizations, strict=True):
        if response.status_code == 200:
            assert finals[order_id] == "AUTHORIZED"
    await invariants(db, {product: ROUNDS})


async def test_two_sweepers_racing_restock_each_expired_order_exactly_once(
    orders, db, make_product, orders_engine, service_database_urls, invariants
):
    from orders.expiry import sweep_expired
    from orders.settings import OrdersSettings
    from servicekit.db import create_engine

    products = [await make_product(stock=50) for _ in range(3)]
    order_ids = []
    for i in range(30):
        # Orders share products, so one sweep batch restocks one product from several orders.
        lines = [{"productId": products[i % 3], "qty": 1}, {"productId": products[(i + 1) % 3], "qty": 2}]
        response = await orders.client.post("/orders", json={"items": lines})
        order_ids.append(response.json()["orderId"])
    await db.execute(
        "UPDATE orders.orders SET expires_at = now() - interval '1 second' WHERE id = ANY($1)", order_ids
    )
    other = create_engine(OrdersSettings(database_url=service_database_urls["orders"]))
    try:
        first, second = await asyncio.gather(
            sweep_expired(orders_engine, batch=4), sweep_expired(other, batch=4)
        )
    finally:
        await other.dispose()

    mine = set(order_ids)
    assert not set(first) & set(second)
    assert mine <= set(first) | set(second)
    statuses = await db.fetch("SELECT DISTINCT status FROM orders.orders WHERE id = ANY($1)", order_ids)
    assert [r["status"] for r in statuses] == ["EXPIRED"]
    assert [
        await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", p) for p in products
    ] == [
        50,
        50,
        50,
    ]
    await invariants(db, dict.fromkeys(products, 50))


async def test_the_app_sweeps_expired_reservations_by_itself(
    service_database_urls, credential_settings, payments_url, api, db, make_product
):
    from devstack.testing import LiveServer
    from orders.app import create_app as create_orders_app
    from orders.settings import OrdersSettings

    product = await make_product(stock=5)
    settings = OrdersSettings(
        database_url=service_database_urls["orders"],
        **credential_settings("orders"),
        payments_url=payments_url,
        reservation_ttl_s=0.3,
        expiry_sweep_interval_s=0.05,
    )
    with LiveServer(create_orders_app(settings)) as server:
        async with api(server.url) as orders:
            order_id = (await orders.place(product, 2))["orderId"]

            async def expired() -> bool:
                return (await orders.get(order_id))["status"] == "EXPIRED"

            await wait_until(expired, within_s=10)
            order = await orders.get(order_id)
            late = await orders.authorize(order_id)
            cancel = await orders.cancel(order_id)
    assert order["expires_at"] is None
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 5
    assert (late.status_code, late.json()["code"]) == (409, "order_expired")
    assert (cancel.status_code, cancel.json()["code"]) == (409, "order_not_cancellable")

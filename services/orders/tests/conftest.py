"""Orders test helpers: a small API client, orders and payments servers of a test's own, a reconciler the test
drives, and the one check of ADR 0004's four invariants that every lifecycle test ends with.

(Test modules reach these through fixtures: with --import-mode=importlib a conftest cannot be imported.)"""

import contextlib
import functools
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack.testing import LiveServer
from notifications.events import CATALOGUE
from orders.app import create_app as create_orders_app
from orders.expiry import sweep_expired
from orders.payments import HttpPaymentsClient, RetryPolicy
from orders.reconciler import reconcile_once
from orders.settings import OrdersSettings
from payments.app import create_app as create_payments_app
from payments.settings import PaymentsSettings
from servicekit.db import create_engine

GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
NO_FUNDS_CARD = "4000 0000 0000 9995"

# Quick retries, so faults resolve (or exhaust the budget) in a fraction of a second; the background sweeper
# and reconciler stay out of the way unless a test asks for them (tests drive them with the functions).
FAST: dict[str, Any] = {
    "payments_retry_wait_initial_s": 0.02,
    "payments_retry_wait_max_s": 0.2,
    "payments_retry_wait_jitter_s": 0.02,
    "expiry_sweep_interval_s": 3_600,
    "reconcile_interval_s": 3_600,
}


class OrdersApi:
    """Orders' REST API as a caller uses it, over real HTTP."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def place(self, product_id: int, qty: int = 1, **body: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/orders", json={"items": [{"productId": product_id, "qty": qty}], **body}
        )
        assert response.status_code == 201, response.text
        placed: dict[str, Any] = response.json()
        return placed

    async def get(self, order_id: int) -> dict[str, Any]:
        response = await self.client.get(f"/orders/{order_id}")
        assert response.status_code == 200, response.text
        order: dict[str, Any] = response.json()
        return order

    async def authorize(self, order_id: int, card: str = GOOD_CARD) -> httpx.Response:
        return await self.client.post(f"/orders/{order_id}/authorize", json={"card_number": card})

    async def capture(self, order_id: int) -> httpx.Response:
        return await self.client.post(f"/orders/{order_id}/capture")

    async def cancel(self, order_id: int) -> httpx.Response:
        return await self.client.post(f"/orders/{order_id}/cancel")

    async def refund(
        self, order_id: int, amount_cents: int, key: str, reason: str | None = None
    ) -> httpx.Response:
        return await self.client.post(
            f"/orders/{order_id}/refunds",
            json={"amount_cents": amount_cents, "reason": reason},
            headers={"Idempotency-Key": key},
        )


@pytest.fixture
async def orders(orders_url: str, as_gateway: dict[str, str]) -> AsyncIterator[OrdersApi]:
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=60) as client:
        yield OrdersApi(client)


@contextlib.asynccontextmanager
async def orders_api(url: str, headers: dict[str, str]) -> AsyncIterator[OrdersApi]:
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        yield OrdersApi(client)


@pytest.fixture
def api(as_gateway: dict[str, str]) -> Callable[[str], Any]:
    """``async with api(url) as orders:`` an OrdersApi on an orders server of the test's own (calling as
    the gateway)."""
    return functools.partial(orders_api, headers=as_gateway)


class PaymentsServer:
    """A payments app of the test's own; ``wrap`` puts an ASGI layer in front of it. Stop and start it (on
    the same port) to take payments down and bring it back."""

    def __init__(
        self, database_urls: dict[str, str], *, port: int | None = None, wrap: Any = None, **settings: Any
    ):
        self.app = create_payments_app(PaymentsSettings(database_url=database_urls["payments"], **settings))
        self.server = LiveServer(wrap(self.app) if wrap else self.app, port=port)
        self.url = self.server.url

    def __enter__(self) -> "PaymentsServer":
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def processor(self) -> Any:
        return self.app.state.processor

    @processor.setter
    def processor(self, value: Any) -> None:
        self.app.state.processor = value


@pytest.fixture
def payments_server(
    service_database_urls: dict[str, str], credential_settings: Callable[[str], dict[str, Any]]
) -> Callable[..., PaymentsServer]:
    def make(**kwargs: Any) -> PaymentsServer:
        return PaymentsServer(service_database_urls, **{**credential_settings("payments"), **kwargs})

    return make


@pytest.fixture
def orders_server(
    service_database_urls: dict[str, str], credential_settings: Callable[[str], dict[str, Any]]
) -> Callable[..., Any]:
    """``with orders_server(payments_url, **settings) as url:`` an orders app of the test's own."""

    @contextlib.contextmanager
    def make(payments_url: str, **overrides: Any) -> Iterator[str]:
        settings = OrdersSettings(
            database_url=service_database_urls["orders"],
            payments_url=payments_url,
            **{**credential_settings("orders"), **FAST, **overrides},
        )
        with LiveServer(create_orders_app(settings)) as server:
            yield server.url

    return make


@pytest.fixture(scope="module", params=["batched", "single"])
def orders_url_each_placement(
    request: pytest.FixtureRequest,
    service_database_urls: dict[str, str],
    payments_url: str,
    credential_settings: Callable[[str], dict[str, Any]],
) -> Iterator[str]:
    """An orders server per ORDERS_PLACEMENT: a module that takes this as its ``orders_url`` runs every test
    with group commit on and off."""
    settings = OrdersSettings(
        database_url=service_database_urls["orders"],
        db_pool_size=20,
        payments_url=payments_url,
        placement=request.param,
        **credential_settings("orders"),
    )
    with LiveServer(create_orders_app(settings)) as server:
        yield server.url


@pytest.fixture
async def orders_engine(service_database_urls: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    """An engine as the orders role, for driving the sweeper and the reconciler from the test."""
    engine = create_engine(OrdersSettings(database_url=service_database_urls["orders"]))
    try:
        yield engine
    finally:
        await engine.dispose()


class Reconciler:
    """``reconcile_once`` and ``sweep_expired`` run by the test against a payments URL of its choice."""

    def __init__(self, engine: AsyncEngine, token: str) -> None:
        self.engine = engine
        self.token = SecretStr(token)  # orders' credential, as the orders app sends it

    async def reconcile(self, payments_url: str, *, horizon_s: float = 3_600.0) -> list[int]:
        """One pass over every order with an open reconcile_at (the test's requests have all completed, so
        none is still in flight: taking them before they are due is right here)."""
        async with httpx.AsyncClient(base_url=payments_url, timeout=10) as http:
            client = HttpPaymentsClient(
                http, RetryPolicy(attempts=3, timeout_s=5, wait_initial_s=0.02), token=self.token
            )
            return await reconcile_once(self.engine, client, horizon_s=horizon_s, batch=1_000)

    async def sweep(self) -> list[int]:
        return await sweep_expired(self.engine)


@pytest.fixture
def reconciler(orders_engine: AsyncEngine, service_tokens: dict[str, str]) -> Reconciler:
    return Reconciler(orders_engine, service_tokens["orders"])


async def assert_money_and_stock_invariants(db: asyncpg.Connection, stock: dict[int, int]) -> None:
    """ADR 0004's four invariants, checked in SQL across the orders, payments and inventory schemas, for every
    order of the given products (``stock``: product id → its starting stock; the test owns the products).

    1. every PAID or REFUNDED order has exactly one captured payment of its total (its own), and its
       refunded_cents equals payments' refunded sum for it;
    2. every CANCELLED and EXPIRED order has no payment left authorized and nets zero;
    3. stock is conserved: starting stock + restocks = stock_qty + units in live orders;
    4. refunded ≤ captured ≤ authorized for every payment;
    and, so nothing charged stays unrecorded: no order other than a PAID/REFUNDED one holds captured money,
    and an AUTHORIZED order's one live authorization is its own payment of its total.
    """
    product_ids = list(stock)
    order_ids = await db.fetchval(
        "SELECT COALESCE(array_agg(DISTINCT order_id), '{}') FROM orders.order_items"
        " WHERE product_id = ANY($1)",
        product_ids,
    )
    assert order_ids, "no orders to check"
    paid_wrong = await db.fetch(
        """
        SELECT o.id, o.status, o.total_cents, o.payment_id, o.refunded_cents,
               (SELECT json_agg(p ORDER BY p.id) FROM payments.payments AS p
                 WHERE p.order_id = o.id) AS payments
          FROM orders.orders AS o
         WHERE o.id = ANY($1) AND o.status IN ('PAID', 'REFUNDED') AND o.total_cents > 0
           AND NOT (
               (SELECT count(*) FROM payments.payments AS p
                 WHERE p.order_id = o.id AND p.id = o.payment_id AND p.captured_cents = o.total_cents) = 1
               AND (SELECT count(*) FROM payments.payments AS p
                     WHERE p.order_id = o.id AND p.id <> o.payment_id
                       AND (p.status = 'authorized' OR p.captured_cents <> p.refunded_cents)) = 0
               AND o.refunded_cents = (SELECT p.refunded_cents FROM payments.payments AS p
                                        WHERE p.id = o.payment_id)
               AND o.captured_cents = o.total_cents
               AND (o.status = 'REFUNDED') = (o.refunded_cents = o.captured_cents))
        """,
        order_ids,
    )
    assert paid_wrong == [], f"invariant 1 broken: {[dict(r) for r in paid_wrong]}"
    closed_wrong = await db.fetch(
        """
        SELECT o.id, o.status, p.id AS payment_id, p.status AS payment_status,
               p.captured_cents, p.refunded_cents
          FROM orders.orders AS o JOIN payments.payments AS p ON p.order_id = o.id
         WHERE o.id = ANY($1) AND o.status IN ('CANCELLED', 'EXPIRED')
           AND (p.status IN ('authorized', 'pending') OR p.captured_cents <> p.refunded_cents)
        """,
        order_ids,
    )
    assert closed_wrong == [], f"invariant 2 broken: {[dict(r) for r in closed_wrong]}"
    stock_wrong = await db.fetch(
        """
        SELECT p.id, p.stock_qty, s.starting,
               COALESCE((SELECT sum(i.qty)
                           FROM orders.order_items AS i JOIN orders.orders AS o ON o.id = i.order_id
                          WHERE i.product_id = p.id AND o.status IN
                                ('PENDING', 'PAYMENT_FAILED', 'AUTHORIZED', 'PAID', 'REFUNDED')), 0)
                 AS live_units
          FROM inventory.products AS p
          JOIN unnest($1::bigint[], $2::int[]) AS s (id, starting) ON s.id = p.id
        """,
        product_ids,
        [stock[p] for p in product_ids],
    )
    for row in stock_wrong:
        assert row["starting"] == row["stock_qty"] + row["live_units"], f"invariant 3 broken: {dict(row)}"
    money_wrong = await db.fetch(
        """
        SELECT p.* FROM payments.payments AS p
         WHERE p.order_id = ANY($1)
           AND NOT (0 <= p.refunded_cents AND p.refunded_cents <= p.captured_cents
                    AND p.captured_cents <= p.amount_cents)
        """,
        order_ids,
    )
    assert money_wrong == [], f"invariant 4 broken: {[dict(r) for r in money_wrong]}"
    unrecorded = await db.fetch(
        """
        SELECT o.id, o.status, o.payment_id, p.id AS payment, p.status AS payment_status, p.amount_cents
          FROM orders.orders AS o JOIN payments.payments AS p ON p.order_id = o.id
         WHERE o.id = ANY($1)
           AND ((o.status NOT IN ('PAID', 'REFUNDED') AND p.captured_cents <> p.refunded_cents)
                OR (o.status IN ('PENDING', 'PAYMENT_FAILED') AND p.status IN ('authorized', 'pending'))
                OR (o.status = 'AUTHORIZED' AND p.status = 'authorized'
                    AND (p.id <> o.payment_id OR p.amount_cents <> o.total_cents)))
        """,
        order_ids,
    )
    assert unrecorded == [], f"money held that no order records: {[dict(r) for r in unrecorded]}"
    await assert_events_follow_orders(db, order_ids)


async def assert_events_follow_orders(db: asyncpg.Connection, order_ids: list[int]) -> None:
    """The outbox agrees with the orders (issue 14): every event fits the worker's catalogue; each order has
    one order.placed, first; one order.cancelled / order.expired exactly when it is CANCELLED / EXPIRED (a
    transition that lost its race wrote nothing); one order.paid if it is PAID or REFUNDED, never two; one
    order.refunded per refund it records; and no more authorizations or declines than payment attempts."""
    events = await db.fetch(
        """
        SELECT id, type, version, aggregate, aggregate_id, data::text AS data FROM outbox.events
         WHERE aggregate = 'order' AND aggregate_id = ANY($1) ORDER BY id
        """,
        order_ids,
    )
    for event in events:
        model = CATALOGUE[event["type"]]
        model.model_validate_json(event["data"])  # the worker's own check
        assert (event["version"], json.loads(event["data"])["order_id"]) == (1, event["aggregate_id"])
    wrong = await db.fetch(
        """
        WITH counts AS (
            SELECT o.id, o.status, o.payment_attempts,
                   (SELECT count(*) FROM orders.refunds AS r WHERE r.order_id = o.id) AS refunds,
                   count(e.id) FILTER (WHERE e.type = 'order.placed') AS placed,
                   min(e.id) FILTER (WHERE e.type = 'order.placed') AS placed_id,
                   min(e.id) AS first_id,
                   count(e.id) FILTER (WHERE e.type = 'order.cancelled') AS cancelled,
                   count(e.id) FILTER (WHERE e.type = 'order.expired') AS expired,
                   count(e.id) FILTER (WHERE e.type = 'order.paid') AS paid,
                   count(e.id) FILTER (WHERE e.type = 'order.refunded') AS refunded,
                   count(e.id) FILTER (WHERE e.type IN ('order.authorized', 'payment.declined')) AS attempts
              FROM orders.orders AS o
              LEFT JOIN outbox.events AS e ON e.aggregate = 'order' AND e.aggregate_id = o.id
             WHERE o.id = ANY($1)
             GROUP BY o.id
        )
        SELECT * FROM counts
         WHERE NOT (placed = 1 AND placed_id = first_id
                    AND cancelled = (status = 'CANCELLED')::int AND expired = (status = 'EXPIRED')::int
                    AND paid <= 1 AND (status NOT IN ('PAID', 'REFUNDED') OR paid = 1)
                    AND refunded = refunds AND attempts <= payment_attempts)
        """,
        order_ids,
    )
    assert wrong == [], f"events disagree with the orders: {[dict(r) for r in wrong]}"


@pytest.fixture
def events_follow_orders() -> Callable[..., Any]:
    """``await events_follow_orders(db, order_ids)``: see assert_events_follow_orders."""
    return assert_events_follow_orders


@pytest.fixture
def invariants() -> Callable[..., Any]:
    """``await invariants(db, {product_id: starting_stock})``: see assert_money_and_stock_invariants."""
    return assert_money_and_stock_invariants

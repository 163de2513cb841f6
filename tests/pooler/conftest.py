"""The order services served through a real pgbouncer in transaction mode.

These fixtures shadow the root conftest's ``payments_url`` and ``orders_url``, the orders tests' own
``orders_engine`` (which drives the reconciler and the sweeper) and test_races.py's ``slow_pair`` for the
tests in this folder: the same apps and engines, their database URLs pointed at a pgbouncer (started here on
a free loopback port, in front of the run's PostgreSQL) and ``db_pooler="transaction"``. ``db`` and
``make_product`` stay direct superuser connections: they arrange and inspect, they are not under test.
"""

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack.pgbouncer import PGBOUNCER, PgBouncer
from devstack.testing import LiveServer
from orders.app import create_app as create_orders_app
from orders.settings import OrdersSettings
from payments.app import create_app as create_payments_app
from payments.settings import PaymentsSettings
from servicekit.db import create_engine


@pytest.fixture(scope="session")
def pgbouncer(postgres_server_url: str, service_database_urls: dict[str, str]) -> Iterator[PgBouncer]:
    """pgbouncer 1.18 in transaction mode, letting in the service roles with their passwords. Skips only
    when the binary is missing; on CI (CI=true) a missing pgbouncer fails, so these tests always run there."""
    if not os.path.exists(PGBOUNCER):
        message = f"no {PGBOUNCER} (apt-get install pgbouncer): pooler tests skipped"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    passwords = {}
    for url in service_database_urls.values():
        parts = urlsplit(url)
        assert parts.username
        assert parts.password
        passwords[parts.username] = parts.password
    with PgBouncer(postgres_server_url, passwords) as bouncer:
        yield bouncer


CredentialSettings = Callable[[str], dict[str, Any]]


@pytest.fixture(scope="session")
def pooled_database_urls(pgbouncer: PgBouncer, service_database_urls: dict[str, str]) -> dict[str, str]:
    return {service: pgbouncer.url_for(url) for service, url in service_database_urls.items()}


@pytest.fixture(scope="session")
def payments_url(
    pooled_database_urls: dict[str, str], credential_settings: CredentialSettings
) -> Iterator[str]:
    settings = PaymentsSettings(
        database_url=pooled_database_urls["payments"],
        db_pooler="transaction",
        **credential_settings("payments"),
    )
    with LiveServer(create_payments_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="session")
def orders_url(
    pooled_database_urls: dict[str, str], payments_url: str, credential_settings: CredentialSettings
) -> Iterator[str]:
    settings = OrdersSettings(
        database_url=pooled_database_urls["orders"],
        db_pool_size=20,
        payments_url=payments_url,
        db_pooler="transaction",
        **credential_settings("orders"),
    )
    with LiveServer(create_orders_app(settings)) as server:
        yield server.url


@pytest.fixture
async def orders_engine(pooled_database_urls: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    """An engine as the orders role through the pooler, for the reconciler and the sweeper the tests drive."""
    settings = OrdersSettings(database_url=pooled_database_urls["orders"], db_pooler="transaction")
    engine = create_engine(settings)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def slow_pair(
    pooled_database_urls: dict[str, str], credential_settings: CredentialSettings
) -> Iterator[tuple[str, str]]:
    """test_races.py's pair through the pooler: payments whose processor takes 50 ms a call (so racing
    requests really overlap), and an orders app of its own in front of it; (orders url, payments url)."""
    payments = create_payments_app(
        PaymentsSettings(
            database_url=pooled_database_urls["payments"],
            db_pooler="transaction",
            processor_latency_s=0.05,
            **credential_settings("payments"),
        )
    )
    with LiveServer(payments) as payments_server:
        orders = create_orders_app(
            OrdersSettings(
                database_url=pooled_database_urls["orders"],
                db_pooler="transaction",
                payments_url=payments_server.url,
                db_pool_size=20,
                expiry_sweep_interval_s=3_600,
                reconcile_interval_s=3_600,
                **credential_settings("orders"),
            )
        )
        with LiveServer(orders) as orders_server:
            yield orders_server.url, payments_server.url

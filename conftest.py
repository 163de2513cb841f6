"""Fixtures every package's tests share: one migrated PostgreSQL database per run, and live services.

Each service runs as its own least-privilege role, served over real HTTP on a loopback port.
"""

import io
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import pytest
import structlog
from hypothesis import settings

from devstack.testing import LiveServer, log_events
from gateway.app import create_app as create_gateway_app
from gateway.auth import create_account
from gateway.settings import GatewaySettings
from inventory.app import create_app as create_inventory_app
from inventory.settings import InventorySettings
from lockstock_db import database
from lockstock_db.credentials import ACCEPTED, CALLING_APPS
from notifications.app import create_app as create_notifications_app
from notifications.settings import NotificationsSettings
from orders.app import create_app as create_orders_app
from orders.settings import OrdersSettings
from payments.app import create_app as create_payments_app
from payments.settings import PaymentsSettings
from servicekit.db import plain_url
from servicekit.sync import run_sync
from web.app import create_app as create_web_app
from web.settings import WebSettings

# No test is timed (speed is the bench's): hypothesis's 200 ms deadline per example only failed pure checks
# when the machine was busy (a mapping test failed once so while the suite's servers started).
settings.register_profile("lockstock", deadline=None)
settings.load_profile("lockstock")


@pytest.fixture(scope="session")
def migrated_admin_url(postgres_admin_url: str) -> str:
    database.migrate(postgres_admin_url)
    return postgres_admin_url


@pytest.fixture(scope="session")
def service_database_urls(migrated_admin_url: str) -> dict[str, str]:
    passwords = {role: f"test-{role}" for role in database.SERVICE_ROLES.values()}
    database.apply_role_passwords(migrated_admin_url, passwords)
    return database.service_database_urls(migrated_admin_url, passwords)


@pytest.fixture(scope="session")
def service_tokens() -> dict[str, str]:
    """One service credential per calling app (gateway, orders, web, admin), as `task up` makes them."""
    import secrets

    return {app: f"test-{app}-{secrets.token_urlsafe(16)}" for app in CALLING_APPS}


CredentialSettings = Callable[[str], dict[str, Any]]


@pytest.fixture(scope="session")
def credential_settings(service_tokens: dict[str, str]) -> CredentialSettings:
    """``credential_settings("orders")``: the settings fields that give an app its own credential and the
    ones it accepts, as `task up` does (``OrdersSettings(..., **credential_settings("orders"))``)."""

    def settings_for(app: str) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "caller_tokens": {caller: service_tokens[caller] for caller in ACCEPTED.get(app, ())}
        }
        if app in service_tokens:
            fields["service_token"] = service_tokens[app]
        return fields

    return settings_for


@pytest.fixture(scope="session")
def as_gateway(service_tokens: dict[str, str]) -> dict[str, str]:
    """Headers that call a service as the gateway does (what tests that talk to a service directly send)."""
    return {"Authorization": f"Bearer {service_tokens['gateway']}"}


@pytest.fixture(scope="session")
def as_orders(service_tokens: dict[str, str]) -> dict[str, str]:
    """Headers that call payments as orders does."""
    return {"Authorization": f"Bearer {service_tokens['orders']}"}


@pytest.fixture(scope="session")
def inventory_url(
    service_database_urls: dict[str, str], credential_settings: CredentialSettings
) -> Iterator[str]:
    settings = InventorySettings(
        database_url=service_database_urls["inventory"], **credential_settings("inventory")
    )
    with LiveServer(create_inventory_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="session")
def payments_url(
    service_database_urls: dict[str, str], credential_settings: CredentialSettings
) -> Iterator[str]:
    settings = PaymentsSettings(
        database_url=service_database_urls["payments"], **credential_settings("payments")
    )
    with LiveServer(create_payments_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="session")
def orders_url(
    service_database_urls: dict[str, str], payments_url: str, credential_settings: CredentialSettings
) -> Iterator[str]:
    # Its background expiry sweeper and reconciler stay out of the way (an hour apart): they work on the whole
    # shared database, so every 5 s they would expire or settle another test's orders under it (a test that
    # races its own sweepers found none left to sweep). Tests that need them drive them or start their own.
    settings = OrdersSettings(
        database_url=service_database_urls["orders"],
        db_pool_size=20,
        payments_url=payments_url,
        expiry_sweep_interval_s=3_600,
        reconcile_interval_s=3_600,
        **credential_settings("orders"),
    )
    with LiveServer(create_orders_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="session")
def notifications_url(
    service_database_urls: dict[str, str], credential_settings: CredentialSettings
) -> Iterator[str]:
    """The notifications API (emails, webhooks, alerts, sales) without its worker and with its production
    default, webhook URLs on private and loopback addresses refused: a test that needs events consumed
    starts a worker of its own (see services/notifications/tests)."""
    settings = NotificationsSettings(
        database_url=service_database_urls["notifications"],
        worker_enabled=False,
        **credential_settings("notifications"),
    )
    with LiveServer(create_notifications_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="session")
def notifications_api_url(
    service_database_urls: dict[str, str], credential_settings: CredentialSettings
) -> Iterator[str]:
    """The notifications API as `task up` runs it, webhook URLs on loopback allowed (test receivers listen
    on 127.0.0.1), without its worker: tests start the workers they need, each with its own SMTP sink (see
    services/notifications/tests/conftest.py). The shared gateway calls this one."""
    settings = NotificationsSettings(
        database_url=service_database_urls["notifications"],
        worker_enabled=False,
        webhooks_allow_private=True,
        **credential_settings("notifications"),
    )
    with LiveServer(create_notifications_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="session")
def gateway_settings(
    service_database_urls: dict[str, str],
    inventory_url: str,
    orders_url: str,
    payments_url: str,
    notifications_api_url: str,
    credential_settings: CredentialSettings,
) -> GatewaySettings:
    """The shared gateway's settings: limits high enough that the suite never trips them (rate-limit tests
    start a gateway of their own with low ones)."""
    import secrets

    return GatewaySettings(
        database_url=service_database_urls["gateway"],
        inventory_url=inventory_url,
        orders_url=orders_url,
        payments_url=payments_url,
        notifications_url=notifications_api_url,
        jwt_secret=secrets.token_urlsafe(32),
        rate_limit_place_order="100000/minute",
        rate_limit_authorize_payment="100000/minute",
        rate_limit_login="100000/minute",
        rate_limit_operation="1000000/minute",
        login_failures_per_username="100000/minute",
        login_failures_per_client="100000/minute",
        **credential_settings("gateway"),
    )


@pytest.fixture(scope="session")
def gateway_url(gateway_settings: GatewaySettings) -> Iterator[str]:
    """The GraphQL gateway over the live services; GraphQL is at f"{gateway_url}/graphql"."""
    with LiveServer(create_gateway_app(gateway_settings)) as server:
        yield server.url


@pytest.fixture(scope="session")
def admin_credentials(gateway_settings: GatewaySettings) -> tuple[str, str]:
    """(username, password) of an admin account made for this run."""
    import secrets

    from servicekit.db import create_engine

    username, password = f"admin-{secrets.token_hex(4)}", secrets.token_urlsafe(18)

    async def create() -> None:
        engine = create_engine(gateway_settings)
        try:
            await create_account(engine, username, password, "admin")
        finally:
            await engine.dispose()

    run_sync(create())
    return username, password


@pytest.fixture(scope="session")
def admin_token(gateway_url: str, admin_credentials: tuple[str, str]) -> str:
    """A bearer token for the admin account, signed in through GraphQL's login mutation."""
    import httpx

    username, password = admin_credentials
    response = httpx.post(
        f"{gateway_url}/graphql",
        json={
            "query": "mutation($u: String!, $p: String!) { login(username: $u, password: $p) "
            "{ token errors { code message } } }",
            "variables": {"u": username, "p": password},
        },
        timeout=30,
    )
    login = response.json()["data"]["login"]
    assert login["token"], login["errors"]
    token: str = login["token"]
    return token


@pytest.fixture
async def db(migrated_admin_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection for arranging and inspecting state directly."""
    conn = await asyncpg.connect(plain_url(migrated_admin_url))
    try:
        yield conn
    finally:
        await conn.close()


MakeProduct = Callable[..., Awaitable[int]]


@pytest.fixture
def make_product(db: asyncpg.Connection) -> MakeProduct:
    """Insert a product of this test's own (tests never share rows), returning its id."""

    async def make(stock: int = 10, price_cents: int = 1_000, name: str = "Test product") -> int:
        product_id: int = await db.fetchval(
            "INSERT INTO inventory.products (name, price_cents, stock_qty) VALUES ($1, $2, $3) RETURNING id",
            name,
            price_cents,
            stock,
        )
        return product_id

    return make


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright, headless. Skips, saying why, where there is no Chromium;
    on CI (CI=true) a missing Chromium fails instead, so browser tests can never silently not run.

    Module-scoped on purpose: Playwright's sync API keeps an event loop running on the main thread while it
    lives, and an async test after it would fail with "cannot be called from a running event loop".
    (Session fixtures use servicekit.sync.run_sync, which copes with a running loop, so their order does
    not matter.)"""
    import os
    import shutil

    path = os.environ.get("CHROMIUM_PATH") or (
        CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    )
    if not path:
        message = "no Chromium found (apt-get install chromium, or set CHROMIUM_PATH): browser tests skipped"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=path,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def web_url(gateway_url: str, credential_settings: CredentialSettings) -> Iterator[str]:
    """The web shop, served live and pointed at the live gateway."""
    base = gateway_url.rstrip("/")
    graphql_url = base if base.endswith("/graphql") else f"{base}/graphql"
    settings = WebSettings(
        gateway_url=graphql_url, secret_key="test-web-secret", **credential_settings("web")
    )
    with LiveServer(create_web_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="session")
def admin_ui_url(gateway_url: str, credential_settings: CredentialSettings) -> Iterator[str]:
    """The admin UI, served live and pointed at the live gateway (its cookie Secure, as in production:
    Chromium sends Secure cookies to http://127.0.0.1)."""
    from admin.app import create_app as create_admin_app
    from admin.settings import AdminSettings

    base = gateway_url.rstrip("/")
    graphql_url = base if base.endswith("/graphql") else f"{base}/graphql"
    settings = AdminSettings(
        gateway_url=graphql_url,
        secret_key="test-admin-secret",
        cookie_secure=True,
        **credential_settings("admin"),
    )
    with LiveServer(create_admin_app(settings)) as server:
        yield server.url


DESKTOP_VIEWPORT = {"width": 1100, "height": 760}


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (no cookies) per test, at desktop size."""
    context = browser.new_context(viewport=DESKTOP_VIEWPORT)
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


class LogSink(io.TextIOBase):
    """Where the apps' log lines go during one test: a thread-safe buffer the test reads while servers write.

    ``capfd.readouterr()`` truncates the capture file it reads, so reading it while a live server's thread
    writes a line can drop part of that line; this sink only appends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self.replaced: list[tuple[logging.StreamHandler[Any], Any]] = []

    def write(self, text: str) -> int:
        with self._lock:
            self._parts.append(text)
        return len(text)

    def attach(self) -> "LogSink":
        """Send structlog's lines and the apps' standard-library handler (servicekit.logging's, not
        pytest's own capture handlers) here."""
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(self))
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and isinstance(
                handler.formatter, structlog.stdlib.ProcessorFormatter
            ):
                previous = handler.setStream(self)
                if previous is not None:
                    self.replaced.append((handler, previous))
        return self

    def writable(self) -> bool:
        return True

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._parts)

    def events(self) -> list[dict[str, Any]]:
        """Every JSON event written so far."""
        return log_events(self.text)


@pytest.fixture
def server_logs() -> Iterator[LogSink]:
    """The log lines every app in this process writes while the test runs (structlog's and the standard
    library's), through their public hooks: structlog's logger factory and ``StreamHandler.setStream``.
    A test that creates an app (which configures logging again) calls ``attach()`` after creating it."""
    sink = LogSink()
    previous_factory = structlog.get_config()["logger_factory"]
    try:
        yield sink.attach()
    finally:
        structlog.configure(logger_factory=previous_factory)
        for handler, stream in sink.replaced:
            handler.setStream(stream)

"""Payments test helpers: a small API client (so each test reads as what a caller does), and a payments app
of the test module's own whose processor a test may make slow or broken.

(Test modules reach these through fixtures: with --import-mode=importlib a conftest cannot be imported.)"""

import itertools
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from devstack.testing import LiveServer
from payments.app import create_app
from payments.processor import SimulatedProcessor
from payments.settings import PaymentsSettings

GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
NO_FUNDS_CARD = "4000 0000 0000 9995"

# Order ids far above any real order's, so these payments never meet an order the orders tests create.
_order_ids = itertools.count(random.randint(10**12, 2 * 10**12) * 1000)

NO_KEY = "<no Idempotency-Key header>"


def new_order_id() -> int:
    return next(_order_ids)


def new_key() -> str:
    return f"test-{time.monotonic_ns()}-{random.getrandbits(32)}"


def luhn_card(prefix: str = "4", length: int = 16) -> str:
    """A random Luhn-valid card number (so a test can search for a number nobody else used)."""
    body = prefix + "".join(random.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        digits = body + check
        total = sum(
            (int(d) * 2 - 9 if int(d) > 4 else int(d) * 2) if i % 2 else int(d)
            for i, d in enumerate(reversed(digits))
        )
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable: one check digit always fits")


class PaymentsApi:
    """POST /payments and its actions over real HTTP. ``key`` defaults to a fresh one; NO_KEY sends none."""

    GOOD_CARD = GOOD_CARD
    DECLINED_CARD = DECLINED_CARD
    NO_FUNDS_CARD = NO_FUNDS_CARD
    NO_KEY = NO_KEY
    new_order_id = staticmethod(new_order_id)
    new_key = staticmethod(new_key)
    luhn_card = staticmethod(luhn_card)

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @staticmethod
    def _headers(key: str | None) -> dict[str, str]:
        if key == NO_KEY:
            return {}
        return {"Idempotency-Key": key if key is not None else new_key()}

    async def authorize(
        self,
        *,
        order_id: int | None = None,
        amount_cents: int = 2_500,
        card_number: str = GOOD_CARD,
        key: str | None = None,
    ) -> httpx.Response:
        body = {
            "order_id": order_id if order_id is not None else new_order_id(),
            "amount_cents": amount_cents,
            "card_number": card_number,
        }
        return await self.client.post("/payments", json=body, headers=self._headers(key))

    async def capture(self, payment_id: int, *, key: str | None = None) -> httpx.Response:
        return await self.client.post(f"/payments/{payment_id}/capture", json={}, headers=self._headers(key))

    async def void(self, payment_id: int, *, key: str | None = None) -> httpx.Response:
        return await self.client.post(f"/payments/{payment_id}/void", json={}, headers=self._headers(key))

    async def refund(self, payment_id: int, amount_cents: int, *, key: str | None = None) -> httpx.Response:
        return await self.client.post(
            f"/payments/{payment_id}/refunds", json={"amount_cents": amount_cents}, headers=self._headers(key)
        )

    async def get(self, payment_id: int) -> httpx.Response:
        return await self.client.get(f"/payments/{payment_id}")

    async def authorized(self, amount_cents: int = 2_500, **kwargs: Any) -> dict[str, Any]:
        response = await self.authorize(amount_cents=amount_cents, **kwargs)
        assert response.status_code == 201, response.text
        payment: dict[str, Any] = response.json()
        assert payment["status"] == "authorized", payment
        return payment

    async def captured(self, amount_cents: int = 2_500, **kwargs: Any) -> dict[str, Any]:
        payment = await self.authorized(amount_cents, **kwargs)
        response = await self.capture(payment["payment_id"])
        assert response.status_code == 200, response.text
        captured: dict[str, Any] = response.json()
        return captured


@pytest.fixture
async def api(payments_url: str, as_orders: dict[str, str]) -> AsyncIterator[PaymentsApi]:
    async with httpx.AsyncClient(base_url=payments_url, headers=as_orders, timeout=30) as client:
        yield PaymentsApi(client)


class ControlledApp:
    """A payments app of the test module's own, whose processor the test can make slow or broken."""

    def __init__(self, database_url: str, credentials: dict[str, Any]) -> None:
        self.app = create_app(PaymentsSettings(database_url=database_url, **credentials))
        self.server = LiveServer(self.app)
        self.url = self.server.url

    @property
    def processor(self) -> Any:
        return self.app.state.processor

    @processor.setter
    def processor(self, value: Any) -> None:
        self.app.state.processor = value


@pytest.fixture(scope="module")
def controlled(
    service_database_urls: dict[str, str], credential_settings: Callable[[str], dict[str, Any]]
) -> Iterator[ControlledApp]:
    controlled = ControlledApp(service_database_urls["payments"], credential_settings("payments"))
    with controlled.server:
        yield controlled


@pytest.fixture
async def controlled_api(controlled: ControlledApp, as_orders: dict[str, str]) -> AsyncIterator[PaymentsApi]:
    controlled.processor = SimulatedProcessor()
    async with httpx.AsyncClient(base_url=controlled.url, headers=as_orders, timeout=30) as client:
        yield PaymentsApi(client)
    controlled.processor = SimulatedProcessor()

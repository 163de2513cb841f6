"""Payments under hostile bodies and a database that is down: 4xx with a code or 503 with Retry-After,
never a 500, nothing written by a refusal."""

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devstack.hostile import fuzz_hostile_json
from devstack.testing import LiveServer, closed_port_database_url, query_row
from payments.app import create_app
from payments.settings import PaymentsSettings

# Rows a refusal must not add. A final refusal (a decline, an exceeded refund) is stored under its key by
# design; a claim left in flight would be a leak.
SNAPSHOT = (
    "SELECT (SELECT count(*) FROM payments.payments), (SELECT count(*) FROM payments.refunds),"
    " (SELECT count(*) FROM payments.idempotency_keys WHERE state = 'in_flight')"
)


async def test_hostile_payment_bodies_are_refused_and_write_nothing(
    payments_url: str, migrated_admin_url: str, as_orders: dict[str, str]
) -> None:
    await asyncio.to_thread(
        fuzz_hostile_json,
        payments_url,
        "POST",
        "/payments",
        {
            "order_id": 990_000_000 + uuid.uuid4().int % 1_000_000,
            "amount_cents": 2_800,
            "card_number": "4242 4242 4242 4242",
        },
        snapshot=lambda: query_row(migrated_admin_url, SNAPSHOT),
        headers=lambda: as_orders | {"Idempotency-Key": f"hostile-{uuid.uuid4()}"},
    )


@pytest.fixture(scope="module")
def down_payments_url(
    service_database_urls: dict[str, str], credential_settings: Callable[[str], dict[str, Any]]
) -> Iterator[str]:
    settings = PaymentsSettings(
        database_url=closed_port_database_url(service_database_urls["payments"]),
        **credential_settings("payments"),
    )
    with LiveServer(create_app(settings)) as server:
        yield server.url


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/payments", {"order_id": 1, "amount_cents": 100, "card_number": "4242424242424242"}),
        ("POST", "/payments/1/capture", {}),
        ("POST", "/payments/1/void", {}),
        ("POST", "/payments/1/refunds", {"amount_cents": 100}),
        ("GET", "/payments/1", None),
        ("GET", "/payments?order_id=1", None),
    ],
)
def test_with_the_database_down_every_route_is_503_database_unavailable(
    down_payments_url: str, method: str, path: str, body: object, as_orders: dict[str, str]
) -> None:
    # Orders may call every route (reads and writes).
    headers = as_orders | {"Idempotency-Key": f"down-{uuid.uuid4()}"}
    response = httpx.request(method, f"{down_payments_url}{path}", json=body, headers=headers, timeout=30)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "database_unavailable"

"""Every change of a product writes one product.changed event in the statement that made it (issue 14,
docs/events.md); a refused change writes none."""

import json

import httpx
import pytest

from notifications.events import CATALOGUE


@pytest.fixture
async def client(inventory_url: str, as_gateway: dict[str, str]):
    async with httpx.AsyncClient(base_url=inventory_url, headers=as_gateway, timeout=30) as client:
        yield client


async def events_of(db, product_id: int) -> list[dict]:
    rows = await db.fetch(
        "SELECT type, data::text AS data FROM outbox.events"
        " WHERE aggregate = 'product' AND aggregate_id = $1 ORDER BY id",
        product_id,
    )
    assert {row["type"] for row in rows} <= {"product.changed"}
    for row in rows:
        CATALOGUE[row["type"]].model_validate_json(row["data"])  # what the worker will accept
    return [json.loads(row["data"]) for row in rows]


async def test_create_update_and_stock_changes_each_write_product_changed(client, db):
    created = await client.post("/products", json={"name": "Teapot", "price_cents": 3_000, "stock_qty": 4})
    assert created.status_code == 201, created.text
    product = created.json()["id"]
    assert (await client.patch(f"/products/{product}", json={"price_cents": 2_500})).status_code == 200
    assert (await client.patch(f"/products/{product}/stock", json={"stock_qty": 9})).status_code == 200
    assert (await client.patch(f"/products/{product}/stock", json={"delta": -3})).status_code == 200

    refused = await client.patch(f"/products/{product}/stock", json={"delta": -7})
    assert refused.status_code == 409, refused.text

    def state(price_cents: int, stock_qty: int) -> dict:
        return {
            "product_id": product,
            "name": "Teapot",
            "price_cents": price_cents,
            "stock_qty": stock_qty,
            "threshold": None,
        }

    assert await events_of(db, product) == [
        state(3_000, 4),
        state(2_500, 4),
        state(2_500, 9),
        state(2_500, 6),
    ]


async def test_a_change_to_no_product_writes_no_event(client, db):
    before = await db.fetchval("SELECT count(*) FROM outbox.events WHERE aggregate = 'product'")
    missing = 10**15
    assert (await client.patch(f"/products/{missing}", json={"name": "Ghost"})).status_code == 404
    assert (await client.patch(f"/products/{missing}/stock", json={"delta": 1})).status_code == 404
    assert await db.fetchval("SELECT count(*) FROM outbox.events WHERE aggregate = 'product'") == before

"""A product's low-stock threshold (issue 14, seed 002): part of the product, set by PATCH, validated; and
inventory's own changes write stock.low / stock.restored exactly when they take the product across it."""

import json

import httpx
import pytest

from notifications.events import CATALOGUE
from servicekit.rules import MAX_STOCK


@pytest.fixture
async def client(inventory_url: str, as_gateway: dict[str, str]):
    async with httpx.AsyncClient(base_url=inventory_url, headers=as_gateway, timeout=30) as client:
        yield client


async def new_product(client: httpx.AsyncClient, stock: int, **extra) -> int:
    created = await client.post(
        "/products", json={"name": "Threshold jar", "price_cents": 500, "stock_qty": stock, **extra}
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def events_of(db, product_id: int) -> list[tuple[str, dict]]:
    rows = await db.fetch(
        "SELECT type, data::text AS data FROM outbox.events"
        " WHERE aggregate = 'product' AND aggregate_id = $1 ORDER BY id",
        product_id,
    )
    for row in rows:
        CATALOGUE[row["type"]].model_validate_json(row["data"])  # what the worker will accept
    return [(row["type"], json.loads(row["data"])) for row in rows]


async def transitions(db, product_id: int) -> list[tuple[str, int, int | None]]:
    return [
        (t, d["stock_qty"], d["threshold"])
        for t, d in await events_of(db, product_id)
        if t != "product.changed"
    ]


async def test_the_threshold_is_part_of_the_product_set_and_cleared_by_patch(client):
    product = await new_product(client, stock=20)
    assert (await client.get(f"/products/{product}")).json()["low_stock_threshold"] is None

    set_ = await client.patch(f"/products/{product}", json={"low_stock_threshold": 5})
    assert set_.status_code == 200, set_.text
    assert set_.json()["low_stock_threshold"] == 5
    assert (await client.get(f"/products/{product}")).json()["low_stock_threshold"] == 5
    listed = (await client.get("/products", params={"ids": str(product)})).json()
    assert listed[0]["low_stock_threshold"] == 5

    renamed = await client.patch(f"/products/{product}", json={"name": "Big jar"})
    assert renamed.json()["low_stock_threshold"] == 5  # not sent: kept

    cleared = await client.patch(f"/products/{product}", json={"low_stock_threshold": None})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json() == {
        "id": product,
        "name": "Big jar",
        "price_cents": 500,
        "stock_qty": 20,
        "low_stock_threshold": None,
    }


@pytest.mark.parametrize(
    "value",
    [-1, MAX_STOCK + 1, "5", 5.0, 2.5, True, [5], {"value": 5}, 10**30],
    ids=["negative", "above max stock", "string", "float", "fraction", "bool", "list", "object", "huge"],
)
async def test_a_bad_threshold_is_refused_with_a_message_and_nothing_is_written(client, db, value):
    product = await new_product(client, stock=20, low_stock_threshold=3)
    before = await db.fetchrow("SELECT * FROM inventory.products WHERE id = $1", product)
    events_before = await db.fetchval("SELECT count(*) FROM outbox.events")

    response = await client.patch(f"/products/{product}", json={"low_stock_threshold": value})

    assert response.status_code in (400, 422), response.text
    problem = response.json()
    if response.status_code == 422:
        assert problem["code"] == "validation_error"
        assert "low_stock_threshold" in problem["detail"]
    assert await db.fetchrow("SELECT * FROM inventory.products WHERE id = $1", product) == before
    assert await db.fetchval("SELECT count(*) FROM outbox.events") == events_before


async def test_a_bad_threshold_on_create_is_refused_too(client, db):
    count = await db.fetchval("SELECT count(*) FROM inventory.products")
    response = await client.post(
        "/products", json={"name": "Jar", "price_cents": 1, "stock_qty": 1, "low_stock_threshold": -2}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "low_stock_threshold"
    assert await db.fetchval("SELECT count(*) FROM inventory.products") == count


async def test_the_database_refuses_a_negative_threshold_whoever_writes_it(db, make_product):
    import asyncpg

    product = await make_product(stock=1)
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE inventory.products SET low_stock_threshold = -1 WHERE id = $1", product)


async def test_inventorys_changes_write_stock_low_and_restored_only_on_a_crossing(client, db):
    product = await new_product(client, stock=10, low_stock_threshold=4)

    steps = [
        ("/stock", {"delta": -3}),  # 7: still above
        ("/stock", {"delta": -3}),  # 4: at the threshold -> low
        ("/stock", {"delta": -1}),  # 3: still low, nothing new
        ("/stock", {"stock_qty": 5}),  # 5: above -> restored
        ("", {"low_stock_threshold": 5}),  # threshold raised to the stock -> low
        ("", {"price_cents": 450}),  # a price change: no crossing
        ("", {"low_stock_threshold": None}),  # no threshold: no longer low -> restored
        ("/stock", {"stock_qty": 0}),  # no threshold: never low
        ("", {"low_stock_threshold": 0}),  # 0 at 0 -> low
        ("/stock", {"delta": 1}),  # 1 -> restored
    ]
    for path, body in steps:
        response = await client.patch(f"/products/{product}{path}", json=body)
        assert response.status_code == 200, (body, response.text)
    refused = await client.patch(f"/products/{product}/stock", json={"delta": -5})
    assert refused.status_code == 409  # a refused change writes nothing

    assert await transitions(db, product) == [
        ("stock.low", 4, 4),
        ("stock.restored", 5, 4),
        ("stock.low", 5, 5),
        ("stock.restored", 5, None),
        ("stock.low", 0, 0),
        ("stock.restored", 1, 0),
    ]
    events = await events_of(db, product)
    # one product.changed for the creation and each change, each right after its crossing event, if any
    assert [t for t, _ in events].count("product.changed") == 1 + len(steps)
    for position, (type_, _) in enumerate(events):
        if type_ != "product.changed":
            assert events[position + 1][0] == "product.changed"
    assert events[0] == (
        "product.changed",
        {
            "product_id": product,
            "name": "Threshold jar",
            "price_cents": 500,
            "stock_qty": 10,
            "threshold": 4,
        },
    )


async def test_a_product_created_at_or_below_its_threshold_is_low_at_once(client, db):
    product = await new_product(client, stock=2, low_stock_threshold=2)
    assert await transitions(db, product) == [("stock.low", 2, 2)]

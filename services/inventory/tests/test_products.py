import httpx
import pytest


@pytest.fixture
async def client(inventory_url: str, as_gateway: dict[str, str]):
    async with httpx.AsyncClient(base_url=inventory_url, headers=as_gateway, timeout=30) as client:
        yield client


async def test_products_page_by_id_with_keyset_paging(client, make_product):
    ids = [await make_product(name=f"Paged {i}") for i in range(5)]

    first = (await client.get("/products", params={"after": ids[0] - 1, "limit": 2})).json()
    second = (await client.get("/products", params={"after": first[-1]["id"], "limit": 2})).json()

    assert [p["id"] for p in first] == ids[:2]
    assert [p["id"] for p in second] == ids[2:4]
    assert set(first[0]) == {"id", "name", "price_cents", "stock_qty", "low_stock_threshold"}


async def test_products_can_be_fetched_in_a_batch_by_ids(client, make_product):
    a = await make_product(name="Batch A")
    b = await make_product(name="Batch B")

    response = await client.get("/products", params={"ids": f"{b},{a},{b},999999999"})

    assert response.status_code == 200
    assert [p["id"] for p in response.json()] == [a, b]


async def test_one_product_and_a_missing_one(client, make_product):
    product = await make_product(stock=7, price_cents=1_234, name="Espresso cup")

    found = await client.get(f"/products/{product}")
    missing = await client.get("/products/999999999")

    assert found.json() == {
        "id": product,
        "name": "Espresso cup",
        "price_cents": 1_234,
        "stock_qty": 7,
        "low_stock_threshold": None,
    }
    assert missing.status_code == 404
    assert missing.json()["code"] == "product_not_found"


async def test_an_admin_creates_renames_reprices_and_restocks_a_product(client):
    created = await client.post(
        "/products", json={"name": "  Teapot  ", "price_cents": 3_000, "stock_qty": 4}
    )
    assert created.status_code == 201
    product = created.json()
    assert product["name"] == "Teapot"

    renamed = await client.patch(
        f"/products/{product['id']}", json={"name": "Big teapot", "price_cents": 3_500}
    )
    assert renamed.json() == {
        "id": product["id"],
        "name": "Big teapot",
        "price_cents": 3_500,
        "stock_qty": 4,
        "low_stock_threshold": None,
    }

    set_to = await client.patch(f"/products/{product['id']}/stock", json={"stock_qty": 10})
    added = await client.patch(f"/products/{product['id']}/stock", json={"delta": -3})
    assert set_to.json()["stock_qty"] == 10
    assert added.json()["stock_qty"] == 7


async def test_a_delta_below_zero_is_refused_and_changes_nothing(client, db, make_product):
    product = await make_product(stock=2)

    response = await client.patch(f"/products/{product}/stock", json={"delta": -3})

    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_stock"
    assert response.json()["items"] == [{"product_id": product, "requested": 3, "available": 2}]
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 2


async def test_concurrent_stock_deltas_are_atomic(client, db, make_product):
    import asyncio

    product = await make_product(stock=10)

    responses = await asyncio.gather(
        *(client.patch(f"/products/{product}/stock", json={"delta": -1}) for _ in range(15))
    )

    assert sorted(r.status_code for r in responses) == [200] * 10 + [409] * 5
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 0


@pytest.mark.parametrize(
    ("method", "path_suffix", "body"),
    [
        ("POST", "", {"name": "", "price_cents": 1}),
        ("POST", "", {"name": "x" * 201, "price_cents": 1}),
        ("POST", "", {"name": "Cup", "price_cents": -1}),
        ("POST", "", {"name": "Cup", "price_cents": 1.5}),
        ("POST", "", {"name": "Cup", "price_cents": "100"}),
        ("POST", "", {"name": "Cup", "price_cents": 10**20}),
        ("POST", "", {"name": "Cup", "price_cents": 1, "stock_qty": -1}),
        ("POST", "", {"name": "Cup", "price_cents": 1, "id": 5}),
        ("POST", "", {"name": "Cup\u0000", "price_cents": 1}),
        ("POST", "", {"name": "Cup\nwith a newline", "price_cents": 1}),
        ("PATCH", "/{id}", {"name": "\u0000"}),
        ("PATCH", "/{id}", {}),
        ("PATCH", "/{id}", {"name": None}),
        ("PATCH", "/{id}", {"stock_qty": 5}),
        ("PATCH", "/{id}/stock", {}),
        ("PATCH", "/{id}/stock", {"stock_qty": 1, "delta": 1}),
        ("PATCH", "/{id}/stock", {"stock_qty": -1}),
        ("PATCH", "/{id}/stock", {"delta": 10**12}),
    ],
)
async def test_bad_product_writes_are_422_and_change_nothing(
    client, db, make_product, method, path_suffix, body
):
    product = await make_product(stock=5, price_cents=100, name="Untouched")
    count = await db.fetchval("SELECT count(*) FROM inventory.products")
    path = "/products" + path_suffix.replace("{id}", str(product))

    response = await client.request(method, path, json=body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]
    row = await db.fetchrow(
        "SELECT name, price_cents, stock_qty FROM inventory.products WHERE id = $1", product
    )
    assert tuple(row) == ("Untouched", 100, 5)
    assert await db.fetchval("SELECT count(*) FROM inventory.products") == count


@pytest.mark.parametrize(
    "params",
    [
        {"ids": ""},
        {"ids": "a,b"},
        {"ids": "1,-2"},
        {"ids": "²"},
        {"ids": ",".join(map(str, range(1, 102)))},
        {"ids": str(2**63)},
        {"limit": 0},
        {"limit": 101},
        {"after": -1},
    ],
)
async def test_bad_list_parameters_are_422(client, params):
    response = await client.get("/products", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


async def test_writes_to_an_unknown_product_are_404(client):
    assert (await client.patch("/products/999999999", json={"name": "x"})).status_code == 404
    assert (await client.patch("/products/999999999/stock", json={"delta": 1})).status_code == 404

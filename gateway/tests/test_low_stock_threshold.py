"""Product.lowStockThreshold (issue 14): the admin reads it and sets it with updateProduct (null removes it);
inventory's refusal of a bad value comes back as INVALID_INPUT on the field, and nothing changes; it is not
shown to anyone else."""

from .conftest import Gql, error_codes

UPDATE = """mutation($input: UpdateProductInput!) { updateProduct(input: $input) {
  product { id name stockQty lowStockThreshold } errors { code field message } } }"""
READ = """query($id: ID!) { product(id: $id) { name lowStockThreshold } }"""


async def test_the_admin_sets_reads_and_removes_a_threshold(gql: Gql, admin_token: str, make_product) -> None:
    product = str(await make_product(stock=30, name="Threshold lamp"))

    set_ = (await gql(UPDATE, {"input": {"id": product, "lowStockThreshold": 5}}, token=admin_token))["data"]
    assert set_["updateProduct"] == {
        "product": {"id": product, "name": "Threshold lamp", "stockQty": 30, "lowStockThreshold": 5},
        "errors": [],
    }
    renamed = await gql(UPDATE, {"input": {"id": product, "name": "Lamp"}}, token=admin_token)
    assert renamed["data"]["updateProduct"]["product"]["lowStockThreshold"] == 5  # omitted: kept
    read = await gql(READ, {"id": product}, token=admin_token)
    assert read["data"]["product"] == {"name": "Lamp", "lowStockThreshold": 5}

    removed = await gql(UPDATE, {"input": {"id": product, "lowStockThreshold": None}}, token=admin_token)
    assert removed["data"]["updateProduct"]["product"]["lowStockThreshold"] is None


async def test_a_bad_threshold_is_an_invalid_input_on_the_field_and_changes_nothing(
    gql: Gql, admin_token: str, make_product, db
) -> None:
    product = await make_product(stock=30)
    for value in (-1, 1_000_000_001):
        body = await gql(
            UPDATE, {"input": {"id": str(product), "lowStockThreshold": value}}, token=admin_token
        )
        payload = body["data"]["updateProduct"]
        assert payload["product"] is None
        [error] = payload["errors"]
        assert (error["code"], error["field"]) == ("INVALID_INPUT", "input.lowStockThreshold")
        assert error["message"]
    assert (
        await db.fetchval("SELECT low_stock_threshold FROM inventory.products WHERE id = $1", product) is None
    )
    not_an_int = await gql(
        UPDATE, {"input": {"id": str(product), "lowStockThreshold": "5"}}, token=admin_token
    )
    assert error_codes(not_an_int)  # GraphQL's own type check
    assert not_an_int.get("data") is None


async def test_a_shopper_cannot_see_thresholds(gql: Gql, make_product, db) -> None:
    product = await make_product(stock=30)
    await db.execute("UPDATE inventory.products SET low_stock_threshold = 3 WHERE id = $1", product)

    body = await gql(READ, {"id": str(product)})

    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert body["data"]["product"] == {"name": "Test product", "lowStockThreshold": None}
    shop = await gql("""query($id: ID!) { product(id: $id) { name stockQty } }""", {"id": str(product)})
    assert "errors" not in shop  # the fields a shop asks for are as open as ever

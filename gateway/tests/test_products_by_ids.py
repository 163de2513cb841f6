"""productsByIds: many products in one root field (the shop's cart), over the live services. In the order
asked, null for an id that does not exist, one call to inventory, at most 100 ids, priced by how many."""

from collections.abc import Iterator

import httpx
import pytest
from graphql import parse

from devstack.testing import LiveServer
from gateway.app import create_app
from gateway.cost import CostEstimator
from gateway.schema import build_schema
from gateway.settings import GatewaySettings

from .conftest import Gql, error_codes

BY_IDS = "query($ids: [ID!]!) { productsByIds(ids: $ids) { id name priceCents stockQty } }"


class CountingTransport(httpx.AsyncBaseTransport):
    """The real network, with every request remembered."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="module")
def inventory_calls() -> CountingTransport:
    return CountingTransport()


@pytest.fixture(scope="module")
def counting_gateway_url(
    gateway_settings: GatewaySettings, inventory_calls: CountingTransport
) -> Iterator[str]:
    with LiveServer(create_app(gateway_settings, transports={"inventory": inventory_calls})) as server:
        yield server.url


async def test_answers_in_the_order_asked_with_null_for_an_id_that_does_not_exist(gql: Gql, make_product):
    a = await make_product(name="Alpha", price_cents=1_250, stock=3)
    b = await make_product(name="Bravo", price_cents=990, stock=0)
    c = await make_product(name="Charlie", price_cents=100, stock=7)
    missing = str(c + 1_000_000)
    body = await gql(BY_IDS, {"ids": [str(c), missing, str(a), "not-an-id", "0", str(c), str(b)]})
    assert "errors" not in body, body
    products = body["data"]["productsByIds"]
    assert [p and p["id"] for p in products] == [str(c), None, str(a), None, None, str(c), str(b)]
    assert products[2] == {"id": str(a), "name": "Alpha", "priceCents": 1_250, "stockQty": 3}
    assert products[6] == {"id": str(b), "name": "Bravo", "priceCents": 990, "stockQty": 0}
    assert (await gql(BY_IDS, {"ids": []}))["data"] == {"productsByIds": []}


async def test_all_the_ids_are_one_call_to_inventory(
    gql: Gql, make_product, counting_gateway_url: str, inventory_calls: CountingTransport
):
    products = [await make_product(name=f"Cart line {n}") for n in range(12)]
    unknown = products[-1] + 1_000_000
    asked = [str(p) for p in reversed(products)] + [str(unknown), "x"]
    inventory_calls.requests.clear()
    body = await gql(BY_IDS, {"ids": asked}, url=counting_gateway_url)
    assert "errors" not in body, body
    assert [p and p["id"] for p in body["data"]["productsByIds"]] == [*asked[:-2], None, None]
    [call] = inventory_calls.requests
    assert (call.method, call.url.path) == ("GET", "/products")
    assert sorted(int(i) for i in call.url.params["ids"].split(",")) == [*products, unknown]

    # The field shares the operation's product loader: a product(id:) beside it is in the same call.
    inventory_calls.requests.clear()
    both = await gql(
        "query($ids: [ID!]!, $one: ID!) { productsByIds(ids: $ids) { id } product(id: $one) { name } }",
        {"ids": [str(products[0]), str(products[1])], "one": str(products[2])},
        url=counting_gateway_url,
    )
    assert both["data"]["product"] == {"name": "Cart line 2"}
    assert len(inventory_calls.requests) == 1

    inventory_calls.requests.clear()
    assert (await gql(BY_IDS, {"ids": []}, url=counting_gateway_url))["data"] == {"productsByIds": []}
    assert (await gql(BY_IDS, {"ids": ["x", "-1"]}, url=counting_gateway_url))["data"] == {
        "productsByIds": [None, None]
    }
    assert inventory_calls.requests == []  # nothing to ask inventory about


async def test_at_most_a_hundred_ids(gql: Gql, make_product):
    product = await make_product()
    hundred = await gql(BY_IDS, {"ids": [str(product)] * 100})
    assert "errors" not in hundred, hundred
    assert len(hundred["data"]["productsByIds"]) == 100
    too_many = await gql(BY_IDS, {"ids": [str(product)] * 101})
    assert error_codes(too_many) == ["BAD_REQUEST"]
    assert too_many["errors"][0]["message"] == "ids takes at most 100 ids."
    assert too_many["data"] is None


def test_the_estimate_multiplies_the_fields_by_the_number_of_ids() -> None:
    schema = build_schema(GatewaySettings())._schema
    costs = CostEstimator(default_list_size=10, cache_size=8)
    document = parse(BY_IDS)

    def price(count: int) -> int:
        return costs.price(schema, BY_IDS, document, None, {"ids": [str(n + 1) for n in range(count)]})

    # The field, plus its four fields for each id.
    assert price(3) == 1 + 3 * 4
    # The same query with more ids is priced again, not answered from the cache with three's price.
    assert price(100) == 1 + 100 * 4
    assert price(0) == 1
    assert price(3) == 13
    literal = '{ productsByIds(ids: ["1", "2"]) { id name } }'
    assert costs.price(schema, literal, parse(literal), None, None) == 1 + 2 * 2


@pytest.fixture
def costly_gateway_url(gateway_settings: GatewaySettings) -> Iterator[str]:
    with LiveServer(create_app(gateway_settings.model_copy(update={"max_query_cost": 100}))) as server:
        yield server.url


async def test_a_batch_over_the_cost_limit_is_refused_before_it_runs(gql: Gql, costly_gateway_url: str):
    under = await gql(BY_IDS, {"ids": [str(n + 1) for n in range(20)]}, url=costly_gateway_url)
    assert "errors" not in under, under
    over = await gql(BY_IDS, {"ids": [str(n + 1) for n in range(30)]}, url=costly_gateway_url)
    assert error_codes(over) == ["BAD_REQUEST"]
    assert "cost about 121, over the limit of 100" in over["errors"][0]["message"]

"""Operations are priced before they run; every operation counts against its client's budget."""

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from graphql import DocumentNode, FragmentDefinitionNode, OperationDefinitionNode, parse, print_ast
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.testing import LiveServer
from gateway.app import create_app
from gateway.settings import GatewaySettings

from .conftest import Gql, error_codes

ROOT = Path(__file__).parents[2]


def _operation(ui: str, name: str) -> str:
    """The UI's operation ``name`` with the fragments it spreads (``...Name``), as one document: what its
    generated client ({ui}/src/{ui}/graphql_client) sends."""
    document = parse((ROOT / ui / "graphql" / "operations.graphql").read_text())
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    [operation] = [
        d
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode) and d.name is not None and d.name.value == name
    ]
    used: dict[str, FragmentDefinitionNode] = {}
    pending: list[OperationDefinitionNode | FragmentDefinitionNode] = [operation]
    while pending:
        for spread in re.findall(r"\.\.\.([_A-Za-z]\w*)", print_ast(pending.pop())):
            if spread not in used:
                used[spread] = fragments[spread]
                pending.append(fragments[spread])
    return print_ast(DocumentNode(definitions=(operation, *used.values())))


def shop_operation(name: str) -> str:
    return _operation("web", name)


def admin_operation(name: str) -> str:
    return _operation("admin", name)


UI_QUERIES = {
    "shop products": (shop_operation("Products"), {"first": 100, "after": None}),
    "shop product": (shop_operation("Product"), {"id": "1"}),
    "shop productsByIds": (shop_operation("ProductsByIds"), {"ids": [str(n + 1) for n in range(100)]}),
    "shop order": (shop_operation("Order"), {"id": "1", "token": "x"}),
    "shop placeOrder": (shop_operation("PlaceOrder"), {"input": {"items": []}}),
    "shop authorizePayment": (
        shop_operation("AuthorizePayment"),
        {"input": {"orderId": "1", "accessToken": "x", "cardNumber": "4242 4242 4242 4242"}},
    ),
    "admin orders": (admin_operation("Orders"), {"first": 100}),
    "admin order": (admin_operation("Order"), {"id": "1"}),
}


@pytest.mark.parametrize("name", UI_QUERIES)
async def test_every_query_the_uis_send_passes_the_cost_limit(gql: Gql, admin_token: str, name: str) -> None:
    query, variables = UI_QUERIES[name]
    body = await gql(query, variables, token=admin_token)
    assert "BAD_REQUEST" not in error_codes(body), body


async def test_an_expensive_nested_list_query_is_refused_with_its_cost(gql: Gql, admin_token: str) -> None:
    items = "items { qty product { id name priceCents stockQty } }"
    query = "{ " + " ".join(f"o{n}: orders(first: 100) {{ nodes {{ {items} }} }}" for n in range(3)) + " }"
    body = await gql(query, token=admin_token)
    assert error_codes(body) == ["BAD_REQUEST"]
    assert "cost about 18306, over the limit of 2000" in body["errors"][0]["message"]
    # The page size a variable gives is the one priced.
    small = "query($n: Int!) { orders(first: $n) { nodes { " + items + " } } }"
    assert "BAD_REQUEST" not in error_codes(await gql(small, {"n": 5}, token=admin_token))
    assert error_codes(await gql(small, {"n": 100_000}, token=admin_token)) == ["BAD_REQUEST"]


FIELDS = st.sampled_from(["id", "name", "priceCents", "stockQty", "__typename"])


def selection(depth: int) -> st.SearchStrategy[str]:
    leaf = st.lists(FIELDS, min_size=1, max_size=4).map(" ".join)
    if depth == 0:
        return leaf
    inner = selection(depth - 1)
    return st.one_of(
        leaf,
        st.builds(lambda s: f"... on Product {{ {s} }}", inner),
        st.builds(lambda a, b: f"{a} {b}", inner, inner),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=st.integers(min_value=-5, max_value=10**6),
    aliases=st.integers(min_value=1, max_value=5),
    fields=selection(3),
)
def test_random_nested_selections_pass_or_get_bad_request(
    gateway_url: str, first: int, aliases: int, fields: str
) -> None:
    query = (
        "query($n: Int!) { "
        + " ".join(
            f"p{i}: products(first: $n) {{ nodes {{ {fields} }} pageInfo {{ hasNextPage }} }}"
            for i in range(aliases)
        )
        + " }"
    )
    response = httpx.post(
        f"{gateway_url}/graphql", json={"query": query, "variables": {"n": first}}, timeout=30
    )
    assert response.status_code < 500, response.text
    assert set(error_codes(response.json())) <= {"BAD_REQUEST"}, response.text


@pytest.fixture
def three_operations_gateway_url(gateway_settings: GatewaySettings) -> Iterator[str]:
    with LiveServer(
        create_app(gateway_settings.model_copy(update={"rate_limit_operation": "3/minute"}))
    ) as server:
        yield server.url


async def test_every_operation_is_rate_limited_per_client(
    three_operations_gateway_url: str, service_tokens: dict[str, str], admin_token: str
) -> None:
    async def ask(
        address: str, query: str = "{ products(first: 1) { nodes { id } } }", token: str | None = None
    ):
        headers = {"X-Lockstock-Caller": service_tokens["web"], "X-Forwarded-For": address}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"{three_operations_gateway_url}/graphql", json={"query": query}, headers=headers
            )
        assert response.status_code < 500, response.text
        return response.json()

    assert [error_codes(await ask("203.0.113.5")) for _ in range(2)] == [[], []]
    assert error_codes(await ask("203.0.113.5", "{ nope }")) == ["BAD_REQUEST"]  # counted too
    limited = await ask("203.0.113.5")
    assert error_codes(limited) == ["RATE_LIMITED"]
    assert 1 <= limited["errors"][0]["extensions"]["retryAfter"] <= 60
    # Another shopper, and a signed-in user at the same address, are still served.
    assert error_codes(await ask("198.51.100.9")) == []
    assert error_codes(await ask("203.0.113.5", token=admin_token)) == []

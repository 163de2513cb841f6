"""Validating a document was over half of placeOrder's gateway CPU; repeated documents must hit the cache."""

import httpx
from strawberry.extensions.validation_cache import _get_validate_cache

from gateway.schema import build_schema
from gateway.settings import GatewaySettings


def test_a_repeated_query_is_validated_once(gateway_url):
    cache = _get_validate_cache(GatewaySettings().document_cache_size)
    query = {"query": "query CacheProbe { products(first: 2) { nodes { id name } } }"}
    graphql = f"{gateway_url.removesuffix('/graphql')}/graphql"

    httpx.post(graphql, json=query).raise_for_status()
    before = cache.cache_info()
    for _ in range(5):
        assert "errors" not in httpx.post(graphql, json=query).json()
    after = cache.cache_info()

    assert after.hits - before.hits == 5
    assert after.misses == before.misses


async def test_a_repeated_document_is_parsed_once_and_a_syntax_error_keeps_its_code() -> None:
    schema = build_schema(GatewaySettings())
    documents = schema.parsed_documents
    assert documents is not None
    assert len(documents) == 0

    for _ in range(3):
        result = await schema.execute("query ParseProbe { __typename }")
        assert result.errors is None
        assert result.data == {"__typename": "Query"}
    assert len(documents) == 1

    for _ in range(2):  # a syntax error is never kept, so every repeat is parsed and refused alike
        refused = await schema.execute("query ParseProbe { ")
        assert refused.errors is not None
        assert refused.errors[0].extensions == {"code": "BAD_REQUEST"}
    assert len(documents) == 1

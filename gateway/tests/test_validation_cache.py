"""Validating a document was over half of placeOrder's gateway CPU; repeated documents must hit the cache."""

import httpx
from strawberry.extensions.validation_cache import _get_validate_cache

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

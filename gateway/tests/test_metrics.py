"""The gateway's /metrics: HTTP series like every app, GraphQL operations by root field, upstream latency."""

import httpx


def test_gateway_metrics_count_operations_and_upstream_calls(gateway_url):
    base = gateway_url.removesuffix("/graphql")
    graphql = f"{base}/graphql"
    httpx.post(graphql, json={"query": "{ products(first: 1) { nodes { id } } }"})
    httpx.post(graphql, json={"query": "{ products(first: -1) { nodes { id } } }"})
    httpx.post(graphql, json={"query": "query Custom123 { nope }"})

    text = httpx.get(f"{base}/metrics").text

    assert 'lockstock_graphql_operations_total{field="products",result="ok"}' in text
    assert 'lockstock_graphql_operations_total{field="products",result="error"}' in text
    assert 'field="other"' in text
    assert "Custom123" not in text  # client-chosen names never become label values
    assert 'lockstock_gateway_upstream_seconds_count{outcome="2xx",upstream="inventory"}' in text
    assert 'lockstock_http_requests_total{method="POST",route="/graphql",status="200"}' in text

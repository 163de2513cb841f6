"""Helpers for the gateway's tests: a GraphQL caller over real HTTP."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from gateway.order_tokens import OrderTokens, derived_secret
from gateway.settings import GatewaySettings

Gql = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60) as client:
        yield client


@pytest.fixture
def gql(gateway_url: str, http: httpx.AsyncClient) -> Gql:
    """``await gql(query, variables, token=…, url=…)`` → the response body; asserts it is never a 5xx."""

    async def call(
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        url: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await http.post(
            f"{url or gateway_url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=headers,
        )
        assert response.status_code < 500, response.text
        assert response.headers.get("x-request-id")
        body: dict[str, Any] = response.json()
        return body

    return call


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


@pytest.fixture(scope="session")
def order_tokens(gateway_settings: GatewaySettings) -> OrderTokens:
    """The tokens the suite's gateways issue (their secret is derived from the suite's JWT secret)."""
    assert gateway_settings.jwt_secret
    assert gateway_settings.order_token_secret is None
    return OrderTokens(derived_secret(gateway_settings.jwt_secret.get_secret_value()))

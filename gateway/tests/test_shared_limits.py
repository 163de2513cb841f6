"""Limits shared across replicas: two gateways with one Redis hold a client to one limit between them.

Each gateway is its own app instance on its own port with its own event loop and its own limiter, exactly
what two replicas are; only the storage URL joins them. With the default per-process memory store the same
two gateways let the client through twice as often, which is why the setting exists."""

import asyncio
import os
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from devstack.redisserver import REDIS_SERVER, RedisServer
from devstack.testing import LiveServer
from gateway.app import create_app
from gateway.settings import GatewaySettings

from .conftest import error_codes

PLACE_ORDER = {"query": "mutation { placeOrder(input: {items: []}) { errors { code } } }"}
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token errors { code } } }"


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis of this test's own on a free port (never one on 6379), nothing saved to disk."""
    if not os.path.exists(REDIS_SERVER):
        message = f"no {REDIS_SERVER} (apt-get install redis-server): shared-limit tests skipped"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


def two_gateways(settings: GatewaySettings, storage_uri: str) -> tuple[ExitStack, list[str]]:
    shared = settings.model_copy(
        update={
            "rate_limit_place_order": "4/minute",
            "login_failures_per_username": "2/minute",
            "rate_limit_storage_uri": storage_uri,
        }
    )
    stack = ExitStack()
    urls = [stack.enter_context(LiveServer(create_app(shared))).url for _ in range(2)]
    return stack, urls


async def place_orders_at_once(urls: list[str], count: int) -> list[list[str]]:
    async with httpx.AsyncClient(timeout=30) as http:
        responses = await asyncio.gather(
            *(http.post(f"{urls[i % len(urls)]}/graphql", json=PLACE_ORDER) for i in range(count))
        )
    return [error_codes(response.json()) for response in responses]


async def test_two_gateways_sharing_redis_hold_a_client_to_one_limit(
    gateway_settings: GatewaySettings, redis_url: str
) -> None:
    stack, urls = two_gateways(gateway_settings, redis_url)
    with stack:
        codes = await place_orders_at_once(urls, 10)

    assert codes.count([]) == 4, codes
    assert codes.count(["RATE_LIMITED"]) == 6


async def test_without_a_shared_store_each_gateway_counts_alone(gateway_settings: GatewaySettings) -> None:
    stack, urls = two_gateways(gateway_settings, "async+memory://")
    with stack:
        codes = await place_orders_at_once(urls, 10)

    assert codes.count([]) == 8, codes  # 4 per gateway: the limit is per process


async def test_failed_sign_ins_on_one_gateway_throttle_the_username_on_the_other(
    gateway_settings: GatewaySettings, redis_url: str, admin_credentials: tuple[str, str]
) -> None:
    username, password = admin_credentials
    stack, (first, second) = two_gateways(gateway_settings, redis_url)
    with stack:
        async with httpx.AsyncClient(timeout=30) as http:

            async def login(url: str, secret: str) -> dict:
                response = await http.post(
                    f"{url}/graphql", json={"query": LOGIN, "variables": {"u": username, "p": secret}}
                )
                return response.json()

            for url in (first, second):
                wrong = await login(url, "not the password")
                assert wrong["data"]["login"]["errors"] == [{"code": "INVALID_CREDENTIALS"}]
            throttled = await login(first, password)

    assert error_codes(throttled) == ["RATE_LIMITED"]
    assert throttled["errors"][0]["extensions"]["retryAfter"] >= 1


async def test_a_down_limit_store_answers_service_unavailable_and_recovers(
    gateway_settings: GatewaySettings, admin_credentials: tuple[str, str], redis_server: RedisServer
) -> None:
    """Redis stops under a running gateway: every operation (a query, placeOrder, a sign-in) is refused as
    SERVICE_UNAVAILABLE with retryAfter, the code the shop shows as its 503 page, never INTERNAL; nothing is
    let through uncounted; and it answers again once Redis is back on the same port."""
    username, password = admin_credentials
    redis = redis_server
    settings = gateway_settings.model_copy(update={"rate_limit_storage_uri": redis.url})
    operations = [
        {"query": "{ products(first: 1) { nodes { id } } }"},
        PLACE_ORDER,
        {"query": LOGIN, "variables": {"u": username, "p": password}},
    ]
    with LiveServer(create_app(settings)) as server:
        async with httpx.AsyncClient(timeout=30) as http:

            async def codes() -> list[list[str]]:
                answers = [await http.post(f"{server.url}/graphql", json=op) for op in operations]
                assert all(answer.status_code < 500 for answer in answers)
                return [error_codes(answer.json()) for answer in answers]

            assert (await codes())[0] == []
            redis.stop()
            down = [await http.post(f"{server.url}/graphql", json=op) for op in operations]
            for answer in down:
                body = answer.json()
                assert error_codes(body) == ["SERVICE_UNAVAILABLE"], body
                assert body["errors"][0]["extensions"]["retryAfter"] >= 1
                assert body["data"] is None  # refused before anything ran
            redis.start()
            assert (await codes())[0] == []

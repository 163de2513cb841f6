"""A card number passes through the gateway on its way to orders and payments, and must leave no trace: not in
a log line (errors included), not in a span attribute."""

import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from devstack.testing import LiveServer
from gateway.app import create_app
from gateway.settings import GatewaySettings

from .test_e2e import AUTHORIZE, DECLINED_CARD, NO_FUNDS_CARD, place

# Sent in every shape a client might use; none may be found afterwards, in any shape.
CARDS = ["4242 4242 4242 4242", DECLINED_CARD, NO_FUNDS_CARD, "4242-4242-4242-4241", "5555555555554444"]


def digits(card: str) -> str:
    return re.sub(r"\D", "", card)


def assert_no_card_in(text: str) -> None:
    flat = re.sub(r"[\s-]", "", text)
    for card in CARDS:
        assert digits(card) not in flat, f"card {card[:4]}… found"
        assert card not in text


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line of every app in this process (the gateway and the services it calls), structlog's and
    the standard library's, while the test runs."""
    buffer = io.StringIO()
    previous = structlog.get_config()["logger_factory"]
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(buffer))
    root = logging.getLogger()
    handler = logging.StreamHandler(buffer)
    if root.handlers:
        handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        structlog.configure(logger_factory=previous)


async def send(http: httpx.AsyncClient, url: str, request_id: str, **request: Any) -> httpx.Response:
    response = await http.post(f"{url}/graphql", json=request, headers={"X-Request-ID": request_id})
    assert response.status_code < 500, response.text
    return response


async def test_no_card_number_reaches_a_log_line(
    gql, gateway_url: str, http: httpx.AsyncClient, make_product, captured_logs: io.StringIO
) -> None:
    product = await make_product(stock=5)
    placed = await place(gql, (product, 1))
    order_id, token = placed["order"]["id"], placed["accessToken"]
    request_ids = []

    async def authorize(card: Any, *, query: str = AUTHORIZE, token: str = token) -> httpx.Response:
        request_id = f"card-{uuid.uuid4().hex}"
        request_ids.append(request_id)
        variables = {"input": {"orderId": order_id, "accessToken": token, "cardNumber": card}}
        return await send(http, gateway_url, request_id, query=query, variables=variables)

    await authorize(DECLINED_CARD)  # declined: PAYMENT_FAILED
    await authorize(NO_FUNDS_CARD)
    await authorize("4242-4242-4242-4241")  # fails Luhn: orders refuses it
    await authorize(CARDS[0], token="wrong")  # refused before orders is asked
    # A number where a string belongs: GraphQL's own error quotes the value it could not coerce.
    coerced = await authorize(int(digits(CARDS[-1])))
    assert "BAD_REQUEST" in coerced.text
    inline = f"""mutation {{ authorizePayment(input: {{orderId: "{order_id}", accessToken: "{token}",
      cardNumber: {digits(CARDS[-1])}}}) {{ errors {{ code }} }} }}"""
    await send(http, gateway_url, "card-inline", query=inline)
    request_ids.append("card-inline")
    ok = await authorize(CARDS[0])
    assert ok.json()["data"]["authorizePayment"]["order"]["status"] == "AUTHORIZED"

    logged = captured_logs.getvalue()
    # The instrument sees the gateway's lines for these very requests (else an absence would prove nothing).
    for request_id in request_ids:
        assert f'"request_id": "{request_id}"' in logged, request_id
    assert_no_card_in(logged)


async def test_no_card_number_reaches_a_span(
    gateway_settings: GatewaySettings, http: httpx.AsyncClient, gql, make_product
) -> None:
    exporter = InMemorySpanExporter()
    product = await make_product(stock=5)
    placed = await place(gql, (product, 1))
    variables = {"input": {"orderId": placed["order"]["id"], "accessToken": placed["accessToken"]}}
    with LiveServer(create_app(gateway_settings, span_exporter=exporter)) as server:
        posted = await http.post(
            f"{server.url}/graphql",
            json={"query": AUTHORIZE, "variables": {"input": variables["input"] | {"cardNumber": CARDS[0]}}},
        )
        assert posted.json()["data"]["authorizePayment"]["order"]["status"] == "AUTHORIZED"
        # Over GET the variables ride in the URL (the mutation is refused, but the request is traced).
        await http.get(
            f"{server.url}/graphql",
            params={
                "query": AUTHORIZE,
                "variables": json.dumps(
                    {"input": {"orderId": "1", "accessToken": "x", "cardNumber": CARDS[-1]}}
                ),
            },
        )
        await http.get(f"{server.url}/graphql", params={"query": "{ products(first: 1) { nodes { id } } }"})
        # httpx is traced process-wide: this test's own requests to the gateway are not the gateway's spans.
        spans = [
            span
            for span in exporter.get_finished_spans()
            if not (
                span.kind is SpanKind.CLIENT
                and str((span.attributes or {}).get("http.url", "")).startswith(server.url)
            )
        ]
    attributes = [dict(span.attributes or {}) for span in spans]
    # The instrument sees the requests' server spans, URLs included.
    targets = [str(a.get("http.target") or a.get("url.path") or "") for a in attributes]
    assert sum("/graphql" in target for target in targets) >= 3
    assert any("[redacted]" in str(a.get("http.url") or a.get("url.full") or "") for a in attributes)
    assert_no_card_in(repr(attributes) + repr([span.name for span in spans]))

"""The shop calls the gateway for every shopper from one address, so it forwards each shopper's address
with its own credential: the gateway's per-client limits (believed only with that credential) then apply
per shopper. What a browser claims in X-Forwarded-For is not passed on."""

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from devstack.testing import LiveServer
from web.app import create_app
from web.settings import WebSettings


def test_the_shop_forwards_the_shoppers_address_to_the_gateway():
    seen: list[dict[str, str]] = []

    async def graphql(request: Request) -> JSONResponse:
        seen.append(dict(request.headers))
        return JSONResponse(
            {"data": {"products": {"nodes": [], "pageInfo": {"endCursor": None, "hasNextPage": False}}}}
        )

    recorder = Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])
    with LiveServer(recorder) as upstream:
        shop = create_app(
            WebSettings(
                gateway_url=f"{upstream.url}/graphql",
                secret_key="forwarding-test",
                service_token="the-web-shops-credential",
            )
        )
        with LiveServer(shop) as server:
            response = httpx.get(
                f"{server.url}/", headers={"X-Request-ID": "fwd-1", "X-Forwarded-For": "203.0.113.66"}
            )

    assert response.status_code == 200
    assert seen, "the shop did not call the gateway"
    assert seen[0]["x-forwarded-for"] == "127.0.0.1"  # the shopper's own address, not what it claimed
    assert seen[0]["x-lockstock-caller"] == "the-web-shops-credential"
    assert seen[0]["x-request-id"] == "fwd-1"

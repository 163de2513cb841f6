"""create_app(): the gateway's lifespan (auth DB engine, one shared HTTP client per upstream), GraphQL at
/graphql, health routes, request ids and the body-size guard."""

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import Span
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from gateway.auth import Limits, Tokens
from gateway.clients.base import UpstreamClient, UpstreamHTTP, build_http_client
from gateway.clients.inventory import InventoryClient
from gateway.clients.notifications import NotificationsClient
from gateway.clients.orders import OrdersClient
from gateway.clients.payments import PaymentsClient
from gateway.context import Context, get_context
from gateway.errors import TopLevelCode
from gateway.order_tokens import OrderTokens, derived_secret
from gateway.schema import build_schema, shape_error
from gateway.settings import GatewaySettings
from servicekit.db import create_engine
from servicekit.logging import configure_logging
from servicekit.metrics import instrument_app
from servicekit.middleware import BodySizeLimit, RequestContextMiddleware
from servicekit.tracing import EXCLUDED_URLS, instrument_engine, setup_tracing, shutdown_tracing

log = structlog.get_logger()


def graphql_error_response(
    status: int, message: str, code: TopLevelCode = TopLevelCode.BAD_REQUEST
) -> Response:
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": code.value}}]},
        status_code=status,
    )


def _too_large(scope: Scope, max_bytes: int) -> Response:
    return graphql_error_response(413, f"The request body is over {max_bytes} bytes.")


class GatewayGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI app with two holes closed at the edge.

    It is mounted as a plain route, not through strawberry.fastapi's GraphQLRouter: that router solves
    FastAPI dependencies (context, root value, response, background tasks) for every operation, ~0.8 ms of
    CPU per request on this machine (a third of what the gateway itself spends on a placeOrder). The
    context needs nothing of FastAPI's.

    - JSON it cannot hold: ``json.loads`` raises ValueError for an integer over 4,300 digits and for bytes
      that are not UTF-8, and RecursionError for deep nesting; Strawberry catches only JSONDecodeError, so
      those were 500s. Nesting deeper than any operation of the schema needs is refused as well, before
      graphql-core's recursive coercion meets it.
    - Errors raised outside the schema's extensions (Strawberry turns an exception during parsing or
      validation into an error ShapeErrors never sees) still get a code here, the one way out.
    """

    def decode_json(self, data: str | bytes) -> object:
        try:
            decoded = json.loads(data)
        except json.JSONDecodeError:
            raise
        except (ValueError, RecursionError) as exc:
            raise StarletteHTTPException(
                400, f"The request body is not JSON the gateway accepts: {_why(exc)}."
            ) from None
        if not isinstance(decoded, (dict, list)):
            # Strawberry calls .get() on whatever it decoded: a bare number or string was a 500.
            raise StarletteHTTPException(400, "The request body must be a JSON object.")
        if _nesting_depth(decoded) > MAX_JSON_DEPTH:
            raise StarletteHTTPException(400, f"The request body nests deeper than {MAX_JSON_DEPTH} levels.")
        return decoded

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        assert isinstance(request, Request)  # no subscriptions: the gateway serves no websockets
        return await get_context(request)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        if result.errors:
            result.errors = [
                error if (error.extensions or {}).get("code") else shape_error(error)
                for error in result.errors
            ]
        return await super().process_result(request, result)


MAX_JSON_DEPTH = 32


def _why(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "it nests too deep"
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8"
    return "a number in it is too long"


def _nesting_depth(value: object) -> int:
    """How deep lists and objects nest in ``value`` (iterative: the point is to refuse deep input)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


class PlainErrorsAsGraphQL:
    """Strawberry answers HTTP-level refusals (a body that is not JSON, a mutation over GET) in plain text;
    clients get them in GraphQL's error shape with a code, like every other refusal."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def rewriting_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if 400 <= message["status"] < 500 and headers.get(b"content-type", b"").startswith(
                    b"text/plain"
                ):
                    start = message
                    return
            elif start is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    text = b"".join(chunks).decode("utf-8", "replace")[:300] or "Bad request"
                    await graphql_error_response(start["status"], text)(scope, receive, send)
                return
            await send(message)

        await self.app(scope, receive, rewriting_send)


# Attributes in which the HTTP instrumentation records the request's URL, query string included.
_URL_ATTRIBUTES = ("http.target", "http.url", "url.full", "url.query")


def redact_query_string(span: Span, scope: dict[str, Any]) -> None:
    """GraphQL over GET carries its document and variables in the query string, which the HTTP
    instrumentation records on the server span: a card number sent that way would sit in every trace store.
    The span keeps the path (the operation is in the metrics, by root field)."""
    if not scope.get("query_string") or not span.is_recording():
        return
    recorded = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = recorded.get(key)
        if isinstance(value, str):
            kept = "" if key == "url.query" else value.split("?", 1)[0] + "?"
            span.set_attribute(key, f"{kept}[redacted]")


def create_app(
    settings: GatewaySettings | None = None,
    *,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
    span_exporter: SpanExporter | None = None,
) -> FastAPI:
    """``transports`` (by upstream name: inventory, orders, payments, notifications) replaces the network,
    for tests that stand in for an upstream (httpx.MockTransport) or count the calls made to it.
    ``span_exporter`` traces into it (tests: InMemorySpanExporter); otherwise tracing follows
    OTEL_EXPORTER_OTLP_ENDPOINT."""
    settings = settings or GatewaySettings()
    transports = transports or {}
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        if not secret:
            log.warning(
                "jwt_secret_generated", reason="GATEWAY_JWT_SECRET is not set; tokens end with this process"
            )
            secret = secrets.token_urlsafe(48)
        engine = create_engine(settings)
        instrument_engine(engine, app.state.tracer_provider)

        def http(name: str, base_url: str) -> UpstreamHTTP:
            return build_http_client(
                base_url,
                transport=transports.get(name),
                timeout_s=settings.upstream_timeout_s,
                connect_timeout_s=settings.upstream_connect_timeout_s,
                max_connections=settings.upstream_max_connections,
                token=settings.service_token,
            )

        app.state.settings = settings
        app.state.engine = engine
        app.state.inventory = InventoryClient(http("inventory", settings.inventory_url))
        app.state.orders = OrdersClient(http("orders", settings.orders_url))
        app.state.payments = PaymentsClient(http("payments", settings.payments_url))
        app.state.notifications = NotificationsClient(http("notifications", settings.notifications_url))
        app.state.tokens = Tokens(secret, settings.jwt_ttl_s)
        order_secret = settings.order_token_secret
        app.state.order_tokens = OrderTokens(
            order_secret.get_secret_value().encode() if order_secret else derived_secret(secret)
        )
        app.state.limits = Limits(settings)
        try:
            yield
        finally:
            for client in (
                app.state.inventory,
                app.state.orders,
                app.state.payments,
                app.state.notifications,
            ):
                await client.http.aclose()
            await engine.dispose()
            shutdown_tracing(app.state.tracer_provider)

    app = FastAPI(
        title="lockstock gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    graphql = GatewayGraphQL(
        build_schema(settings),
        graphql_ide="graphiql" if settings.graphiql else None,
        allow_queries_via_get=True,
    )
    app.router.routes.append(Route("/graphql", graphql))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        state = request.app.state
        # Not notifications: only the admin's mail, webhook, alert and sales pages need it, and a worker
        # that is down must not take the shop out of its load balancer.
        upstreams: dict[str, UpstreamClient] = {
            "inventory": state.inventory,
            "orders": state.orders,
            "payments": state.payments,
        }

        async def database_answers() -> bool:
            try:
                async with state.engine.connect() as conn:
                    await conn.execute(text("SELECT 1 FROM auth.accounts LIMIT 1"))
            except Exception:  # readiness reports any failure to reach the database, whatever its kind
                return False
            return True

        answers = await asyncio.gather(
            database_answers(), *(client.healthy() for client in upstreams.values())
        )
        checks = dict(zip(["database", *upstreams], answers, strict=True))
        ready = all(answers)
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # e.g. a body that is not JSON, or a mutation over GET: answered in GraphQL's error shape.
        detail = exc.detail if isinstance(exc.detail, str) else "Bad request"
        return graphql_error_response(exc.status_code, detail)

    app.add_middleware(PlainErrorsAsGraphQL)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, too_large=_too_large)
    app.add_middleware(RequestContextMiddleware)
    instrument_app(app)
    provider = setup_tracing(app, settings.service_name, exporter=span_exporter)
    if provider is not None:
        # Instrumented as the kit does every app, plus the hook (the kit's setup_tracing takes none).
        # Uninstrumenting builds the middleware stack; it is built again, instrumented, on first request.
        FastAPIInstrumentor.uninstrument_app(app)
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=provider,
            excluded_urls=EXCLUDED_URLS,
            server_request_hook=redact_query_string,
        )
        app.middleware_stack = None
    return app

"""Prometheus metrics for any lockstock app: HTTP RED metrics as plain ASGI middleware, and ``/metrics``.

One call instruments an app, whether it comes from ``create_service_app`` (which already makes it) or not
(the gateway, the web shop, the admin)::

    from servicekit.metrics import instrument_app

    app = FastAPI(...)            # or Starlette(...)
    ...                           # routes, other middleware
    instrument_app(app)           # last, so the metrics middleware is the outermost and sees every status

What it exports (each app has a registry of its own, so two apps in one process never mix their counts):

- ``lockstock_http_requests_total{method, route, status}``: finished requests.
- ``lockstock_http_request_duration_seconds{method, route, status}``: histogram of the time to the last byte.
- ``lockstock_http_requests_in_flight{method}``: requests being served now (the route is known only after
  routing, so this one has no route label).

``route`` is the route *template* (``/orders/{order_id}``), read from ``scope["route"]`` after routing, never
the raw path (which would make one series per id). A request no route matched is ``unmatched``.

``GET /metrics`` renders the app's registry plus the process-wide default registry, where business metrics
(``orders.metrics``, ``servicekit.idempotency``'s replay counter, the process collector) live.
"""

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # FastAPI before 0.137.2, or a Starlette-only app
    iter_route_contexts = None  # type: ignore[assignment]

UNMATCHED_ROUTE = "unmatched"
METRICS_PATH = "/metrics"
# Seconds. Finer than the client's default at the low end: most of these requests take a few milliseconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _DefaultRegistry(Collector):
    """Re-exports the process-wide registry from an app's own registry, so one scrape returns both."""

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()


class HttpMetrics:
    """The HTTP metrics of one app, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "lockstock_http_requests",
            "HTTP requests finished, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "lockstock_http_request_duration_seconds",
            "Time from the request's arrival to its last response byte, by route template and status.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "lockstock_http_requests_in_flight",
            "HTTP requests being served right now.",
            ["method"],
            registry=self.registry,
        )
        self.registry.register(_DefaultRegistry())

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _route_path(scope: Scope) -> str:
    """The request path as the routes see it: without the root path (and a Mount's prefix)."""
    path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


def _matchable_routes(app: Any) -> Iterable[Any]:
    routes = getattr(app, "routes", ())
    # FastAPI (0.137+) nests included routers; iter_route_contexts yields each route with its full path.
    return iter_route_contexts(routes) if iter_route_contexts is not None else routes


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``unmatched``; never the raw path.

    Fast path: the route the router put in ``scope["route"]``, if its own pattern matches the request (a
    route of the app itself, or of a Mount, whose prefix is added). Otherwise (a route included with a
    prefix, which FastAPI reports by its relative path; a plain Starlette route in a FastAPI app) the app's
    routes are matched again, as the OpenTelemetry instrumentation does.
    """
    route = scope.get("route")
    regex, path = getattr(route, "path_regex", None), getattr(route, "path", None)
    if isinstance(path, str) and regex is not None and regex.match(_route_path(scope)):
        prefix = ""
        if "app_root_path" in scope:  # inside a Mount: root_path has grown by the mount's prefix
            prefix = str(scope.get("root_path", "")).removeprefix(str(scope["app_root_path"]))
        # A Mount is the route itself when the mounted app is not a router (StaticFiles): one series below it.
        return f"{prefix}/{{path}}" if isinstance(route, Mount) else f"{prefix}{path}"
    probe = {**scope, "root_path": scope.get("app_root_path", scope.get("root_path", ""))}
    partial = None
    for candidate in _matchable_routes(scope.get("app")):
        match, _ = candidate.matches(probe)
        template = getattr(candidate, "path", None)
        if not isinstance(template, str):
            continue
        if isinstance(getattr(candidate, "original_route", candidate), Mount):
            template = f"{template}/{{path}}"
        if match is Match.FULL:
            return template
        if match is Match.PARTIAL and partial is None:
            partial = template  # e.g. 405: the path exists, not for this method
    return partial or UNMATCHED_ROUTE


class MetricsMiddleware:
    """Counts, times and gauges every HTTP request. Plain ASGI: it sits on every request's hot path."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        status = 500  # if the app raises before it responds, the server answers 500
        in_flight = self.metrics.in_flight.labels(method)
        in_flight.inc()
        started = time.perf_counter()

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            elapsed = time.perf_counter() - started
            labels = (method, route_template(scope), str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.duration.labels(*labels).observe(elapsed)
            # Last: a scrape that sees no other request in flight sees every finished one counted.
            in_flight.dec()


def instrument_app(app: Starlette, *, path: str = METRICS_PATH) -> HttpMetrics:
    """Add the metrics middleware (outermost of the app's middleware) and ``GET {path}`` to ``app``.

    Call it after the app's other ``add_middleware`` calls and before the app starts. Returns the app's
    ``HttpMetrics`` (also at ``app.state.http_metrics``).
    """
    metrics = HttpMetrics()

    async def metrics_endpoint(_request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.router.routes.append(Route(path, metrics_endpoint, methods=["GET"], include_in_schema=False))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.state.http_metrics = metrics
    return metrics

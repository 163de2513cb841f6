"""What every upstream client shares: the gateway's credential and the request id on every call, and
non-2xx turned into exceptions."""

from typing import Any

import aiohttp
import httpx
import structlog
from httpx_aiohttp import AiohttpTransport
from opentelemetry import propagate
from pydantic import SecretStr

from gateway.errors import ServiceUnavailable
from gateway.metrics import timed_upstream
from servicekit.callers import caller_headers
from servicekit.errors import current_request_id

log = structlog.get_logger()


class UpstreamError(Exception):
    """The upstream answered with a problem. ``code`` is its machine code (``insufficient_stock``);
    ``problem`` its body, for the fields the schema maps (items, product_ids); never shown as it is."""

    def __init__(self, service: str, status: int, code: str, problem: dict[str, Any]) -> None:
        super().__init__(f"{service} answered {status} {code}")
        self.service = service
        self.status = status
        self.code = code
        self.problem = problem


class UpstreamUnavailable(ServiceUnavailable):
    """The upstream could not be reached or did not answer in time: SERVICE_UNAVAILABLE, never INTERNAL."""

    def __init__(self, service: str) -> None:
        super().__init__(f"The {service} service cannot be reached right now.")


class UpstreamRetryable(UpstreamError, ServiceUnavailable):
    """The upstream answered 503 (its database down or busy, it is shutting down). Still an UpstreamError, so
    a mutation may map a code it knows (``payments_unavailable`` → PAYMENT_UNAVAILABLE); one it does not
    know is raised again and reaches the client as SERVICE_UNAVAILABLE with ``retryAfter``."""

    def __init__(
        self, service: str, status: int, code: str, problem: dict[str, Any], retry_after: int
    ) -> None:
        UpstreamError.__init__(self, service, status, code, problem)
        self.extensions = ServiceUnavailable(
            f"The {service} service is temporarily unavailable.", retry_after
        ).extensions
        self.args = (f"The {service} service is temporarily unavailable. Retry in {retry_after} s.",)


MAX_RETRY_AFTER_S = 60


def _retry_after(response: httpx.Response) -> int:
    """The upstream's Retry-After in whole seconds (1 to 60), 1 when it sent none we can read."""
    value = response.headers.get("retry-after", "")
    return min(int(value), MAX_RETRY_AFTER_S) if value.isdigit() and len(value) < 6 and int(value) > 0 else 1


class UpstreamHTTP:
    """One upstream's HTTP: its base URL, the gateway's credential on every request, the timeouts, an httpx
    transport (aiohttp's pool; tests pass their own, httpx.MockTransport).

    A request goes straight to the transport's public interface (``handle_async_request``), not through
    ``httpx.AsyncClient``: the gateway uses none of the client's per-request machinery (merging the URL with a
    base, a cookie jar read and written through urllib's, auth and redirect flows, event hooks), and on a
    placeOrder that machinery was ~0.5 ms of CPU, a quarter of the gateway's (in-process, 1.9 → 1.25–1.45 ms;
    ADR 0013). The request and the response are still httpx's."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport,
        headers: dict[str, str],
        timeout: httpx.Timeout,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.headers = headers
        self.timeout = timeout

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        json: Any = None,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        """The response, read whole; httpx.TransportError (a timeout among them) when there is none."""
        request = httpx.Request(
            method,
            self.base_url + path,
            params=params,
            json=json,
            headers={**self.headers, **headers} if headers else self.headers,
            extensions={
                "timeout": (self.timeout if timeout_s is None else httpx.Timeout(timeout_s)).as_dict()
            },
        )
        response = await self.transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def aclose(self) -> None:
        await self.transport.aclose()


def build_http_client(
    base_url: str,
    *,
    timeout_s: float,
    connect_timeout_s: float,
    max_connections: int,
    token: SecretStr | None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> UpstreamHTTP:
    """The one client per upstream; every request it sends carries the gateway's credential (``token``)."""

    def session() -> aiohttp.ClientSession:
        # httpx sets every header the request needs; aiohttp would add a Content-Type to a body-less POST
        # (capture, cancel), which the services refuse (415: a body that is not JSON). The services set no
        # cookies the gateway should keep.
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=5),
            skip_auto_headers=("Content-Type",),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    # httpx's own pool (httpcore) walks every pooled connection, polling each idle socket, on every request
    # and every response: at 32 concurrent placeOrders that was ~3.7 ms of CPU per upstream call, over half of
    # the gateway's CPU. Through aiohttp's pool the same call costs ~0.7 ms (httpx-aiohttp's transport).
    return UpstreamHTTP(
        base_url,
        transport=transport or AiohttpTransport(client=session),
        headers=caller_headers(token),
        timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
    )


class UpstreamClient:
    service = "upstream"

    def __init__(self, http: UpstreamHTTP) -> None:
        self.http = http

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        sent = dict(headers or {})
        if request_id := current_request_id():
            sent["X-Request-ID"] = request_id
        # The trace goes upstream with the call (traceparent): httpx's instrumentation wraps only httpx's own
        # transports, not aiohttp's. Without an active span this adds nothing.
        propagate.inject(sent)
        with timed_upstream(self.service) as outcome:
            try:
                response = await self.http.request(method, path, headers=sent, **kwargs)
            except httpx.TransportError as exc:
                log.warning("upstream_unreachable", service=self.service, path=path, error=repr(exc))
                raise UpstreamUnavailable(self.service) from exc
            outcome["value"] = f"{response.status_code // 100}xx"
        if response.is_success:
            return response
        try:
            body = response.json()
        except ValueError:
            body = None
        problem: dict[str, Any] = body if isinstance(body, dict) else {}
        code = problem.get("code") if isinstance(problem.get("code"), str) else f"http_{response.status_code}"
        log.info("upstream_refused", service=self.service, path=path, status=response.status_code, code=code)
        if response.status_code == 503:
            raise UpstreamRetryable(
                self.service, response.status_code, str(code), problem, _retry_after(response)
            )
        raise UpstreamError(self.service, response.status_code, str(code), problem)

    async def healthy(self) -> bool:
        try:
            response = await self.http.request("GET", "/healthz", timeout_s=2.0)
        except httpx.HTTPError:
            return False
        return response.is_success

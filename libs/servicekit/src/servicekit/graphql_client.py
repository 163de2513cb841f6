"""The transport half of a GraphQL client over one shared httpx.AsyncClient, for the apps that call the
gateway (web shop, admin). Each app maps the answer to its own errors and pages; this part is the same."""

from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from pydantic import SecretStr

from servicekit.callers import CALLER_HEADER
from servicekit.errors import current_request_id
from servicekit.middleware import client_address

log = structlog.get_logger()


class GraphQLTransportError(Exception):
    """No GraphQL answer: the gateway was unreachable, too slow (``timeout``), or answered something else."""

    def __init__(self, message: str, *, timeout: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.status = status


@dataclass(frozen=True)
class GraphQLAnswer:
    status: int
    data: dict[str, Any] | None
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def first_error(self) -> tuple[str | None, str, dict[str, Any]]:
        """(extensions.code, message, extensions) of the first top-level error."""
        first = self.errors[0] if self.errors else {}
        extensions = first.get("extensions") or {}
        return extensions.get("code"), str(first.get("message") or ""), extensions


def gateway_http_client(
    service_token: SecretStr | None, *, timeout: httpx.Timeout, limits: httpx.Limits
) -> httpx.AsyncClient:
    """The UI's one client for the gateway. Every request carries the UI's credential (``service_token``) in
    ``X-Lockstock-Caller``: it is what makes the gateway believe the X-Forwarded-For this UI sends (the
    Authorization header is the signed-in person's own)."""
    headers = {CALLER_HEADER: service_token.get_secret_value()} if service_token else {}
    return httpx.AsyncClient(timeout=timeout, limits=limits, headers=headers)


async def post_graphql(
    http: httpx.AsyncClient,
    url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    request_id: str | None = None,
) -> GraphQLAnswer:
    """POST one operation. Forwards the request id and the caller's address (so the gateway's per-client
    limits apply per person, not per UI process; the gateway believes it only with the UI's credential, see
    gateway_http_client) and the bearer token, if any."""
    headers: dict[str, str] = {}
    if rid := request_id or current_request_id():
        headers["X-Request-ID"] = rid
    if caller := client_address():
        headers["X-Forwarded-For"] = caller
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = await http.post(url, json={"query": query, "variables": variables or {}}, headers=headers)
    except httpx.TimeoutException as exc:
        log.warning("gateway_timeout", error=type(exc).__name__)
        raise GraphQLTransportError("The gateway did not answer in time.", timeout=True) from exc
    except httpx.HTTPError as exc:
        log.warning("gateway_unreachable", error=type(exc).__name__)
        raise GraphQLTransportError(f"The gateway cannot be reached ({type(exc).__name__}).") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        log.warning("gateway_bad_response", status=response.status_code)
        raise GraphQLTransportError(
            f"The gateway answered {response.status_code} without a GraphQL body.",
            status=response.status_code,
        )
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    data = body.get("data")
    return GraphQLAnswer(response.status_code, data if isinstance(data, dict) else None, errors)


async def gateway_ready(http: httpx.AsyncClient, graphql_url: str) -> bool:
    """Whether the gateway answers its /healthz (for a UI's /readyz)."""
    try:
        response = await http.get(graphql_url.rsplit("/graphql", 1)[0] + "/healthz", timeout=2.0)
    except httpx.HTTPError:
        return False
    return response.is_success

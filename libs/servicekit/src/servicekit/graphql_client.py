"""The transport half of a GraphQL client over one shared httpx.AsyncClient, for the apps that call the
gateway (web shop, admin). Each app maps the answer to its own errors and pages; this part is the same.

GatewayBaseClient is what the UIs' generated clients (ariadne-codegen, ``uv run task codegen``) stand on:
each generated operation goes out through post_graphql, so it carries the same headers and fails the same
way as a hand-written call."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import structlog
from pydantic import BaseModel, SecretStr
from pydantic_core import to_jsonable_python

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


class GraphQLErrorAnswer(Exception):
    """A GraphQL answer that is not data: top-level ``errors``, or no ``data`` at all."""

    def __init__(self, answer: GraphQLAnswer) -> None:
        code, message, _ = answer.first_error
        super().__init__(message or f"the gateway answered {answer.status} without data ({code})")
        self.answer = answer


# The gateway's codes for "a part of the system is down or busy, try again": each app answers them with its
# 503 page and Retry-After.
RETRYABLE_CODES = frozenset({"SERVICE_UNAVAILABLE", "UNAVAILABLE", "PAYMENT_UNAVAILABLE"})
MAX_RETRY_AFTER_S = 3600


@dataclass(frozen=True)
class Refusal:
    """The first top-level error of an answer that is not data, as the apps act on it: its code, its message,
    and ``retry_after`` (extensions.retryAfter when it is a whole number of seconds, 1 to 3,600; None for
    anything else, which each app answers with its own default)."""

    code: str | None
    message: str
    retry_after: int | None

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES


def refusal(exc: GraphQLErrorAnswer) -> Refusal:
    code, message, extensions = exc.answer.first_error
    retry = extensions.get("retryAfter")
    if isinstance(retry, str) and retry.isascii() and retry.isdigit() and len(retry) < 6:
        retry = int(retry)
    fits = isinstance(retry, int) and not isinstance(retry, bool) and 1 <= retry <= MAX_RETRY_AFTER_S
    return Refusal(code, message, retry if fits else None)


class GatewayBaseClient:
    """The base class of a client generated by ariadne-codegen (its ``base_client_name``): the generated
    methods call ``execute`` and ``get_data``. ``execute`` posts with post_graphql over the app's shared
    client, passing on ``request_id=`` and ``token=`` from the method's keyword arguments; a transport failure
    raises GraphQLTransportError, and ``get_data`` raises GraphQLErrorAnswer for an answer that is not data.
    Each app turns both into its own errors.

    ``unset`` is the generated package's UNSET (an optional argument not given): such variables are left
    out, as ariadne-codegen's own base client does."""

    unset: ClassVar[object] = object()

    def __init__(self, url: str, http_client: httpx.AsyncClient) -> None:
        self.url = url
        self.http_client = http_client

    async def execute(
        self,
        query: str,
        operation_name: str | None = None,
        variables: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> GraphQLAnswer:
        request_id: str | None = kwargs.pop("request_id", None)
        token: str | None = kwargs.pop("token", None)
        if kwargs:
            raise TypeError(f"unexpected arguments: {sorted(kwargs)}")
        return await post_graphql(
            self.http_client,
            self.url,
            query,
            self._variables(variables or {}),
            token=token,
            request_id=request_id,
        )

    def get_data(self, answer: GraphQLAnswer) -> dict[str, Any]:
        if answer.errors or answer.data is None:
            raise GraphQLErrorAnswer(answer)
        return answer.data

    def _variables(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        converted = {name: self._value(value) for name, value in variables.items() if value is not self.unset}
        jsonable: dict[str, Any] = to_jsonable_python(converted)
        return jsonable

    def _value(self, value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value.model_dump(by_alias=True, exclude_unset=True)
        if isinstance(value, list):
            return [self._value(item) for item in value]
        return value


def aware_datetime(value: Any) -> Any:
    """A GraphQL DateTime as a timezone-aware datetime (UTC when the gateway gives none), so it compares with
    now: the generated clients' parse function for DateTime. Anything else is left to pydantic to refuse."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value

"""The per-request context: the shared upstream clients, fresh DataLoaders, the caller and its address."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from gateway.api_keys import looks_like_key, verify_key
from gateway.auth import Limits, Principal, Tokens, bearer_token
from gateway.clients.inventory import InventoryClient
from gateway.clients.notifications import NotificationsClient
from gateway.clients.orders import OrdersClient
from gateway.clients.payments import PaymentsClient
from gateway.errors import Forbidden, GatewayError, ServiceUnavailable, Unauthenticated
from gateway.loaders import Loaders, build_loaders
from gateway.order_tokens import OrderTokens
from gateway.scopes import Scope
from gateway.settings import GatewaySettings
from servicekit.callers import CALLER_HEADER, identify_caller
from servicekit.errors import retryable_database_failure

log = structlog.get_logger()


@dataclass
class Context:
    settings: GatewaySettings
    engine: AsyncEngine
    inventory: InventoryClient
    orders: OrdersClient
    payments: PaymentsClient
    notifications: NotificationsClient
    tokens: Tokens
    order_tokens: OrderTokens
    limits: Limits
    loaders: Loaders
    client_address: str
    caller: Principal | None = None
    # Why the credential sent was refused (UNAUTHENTICATED), or could not be checked (SERVICE_UNAVAILABLE):
    # raised by the first field that needs the caller, so public fields still answer.
    caller_refusal: GatewayError | None = None

    def principal(self) -> Principal | None:
        """The caller: a signed-in person or an API key; None without a credential; the refusal for one that
        does not verify (a caller who sent a token meant to be signed in, and should hear that it is not)."""
        if self.caller_refusal is not None:
            raise self.caller_refusal
        return self.caller

    def client_key(self) -> str:
        """Whom the per-client limits count against: ``key:<id>`` for an API key, ``user:<name>`` when
        signed in, else ``address:<address>`` (the shopper's own, forwarded by the web shop). A credential
        that does not verify counts as its address: the fields that need it refuse it themselves."""
        principal = self.caller
        if principal is not None and principal.api_key_id is not None:
            return f"key:{principal.api_key_id}"
        if principal is not None:
            return f"user:{principal.username}"
        return f"address:{self.client_address}"

    def allows(self, scope: Scope) -> bool:
        """True for an admin, or a key with this scope; False for anyone else, and the refusal for a
        credential that does not verify."""
        principal = self.principal()
        return principal is not None and principal.allows(scope)

    def require(self, scope: Scope) -> Principal:
        """The caller allowed ``scope``, or UNAUTHENTICATED (no/bad/expired credential) / FORBIDDEN."""
        principal = self.principal()
        if principal is None:
            raise Unauthenticated()
        if not principal.allows(scope):
            raise Forbidden(
                f"This API key lacks the scope {scope.value}." if not principal.is_person else None
            )
        return principal

    def require_admin(self) -> Principal:
        """A signed-in admin (a person, not an API key): what managing accounts and keys needs."""
        principal = self.principal()
        if principal is None:
            raise Unauthenticated()
        if not (principal.is_person and principal.role == "admin"):
            raise Forbidden(
                None if principal.is_person else "Only a signed-in admin can do this, not an API key."
            )
        return principal

    def require_person(self) -> Principal:
        """A signed-in account, whatever its role (its own password, signing out)."""
        principal = self.principal()
        if principal is None:
            raise Unauthenticated("Sign in first (Authorization: Bearer <token from login>).")
        if not principal.is_person:
            raise Forbidden("An API key has no session or password; revoke it in the admin instead.")
        return principal


# The apps whose X-Forwarded-For the gateway believes: they call for many people from one address.
FORWARDING_CALLERS = ("web", "admin")


def client_address(request: Request, caller_tokens: Mapping[str, SecretStr]) -> str:
    """The caller's address: the peer's, or the address the web shop or the admin forwards, but only from a
    request that proves it comes from one of them (its credential in X-Lockstock-Caller). Anyone else's
    X-Forwarded-For is ignored, whatever its peer address (under `task up`, every local program is 127.0.0.1).
    """
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        accepted = {name: caller_tokens[name] for name in FORWARDING_CALLERS if name in caller_tokens}
        if identify_caller(request.headers.get(CALLER_HEADER), accepted) is not None:
            hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
            if hops:
                return hops[-1][:64]
    return peer


async def identify_caller_of(
    engine: AsyncEngine, tokens: Tokens, authorization: str | None
) -> tuple[Principal | None, GatewayError | None]:
    """Who sent this Authorization header: (principal, None), (None, None) without one, or (None, refusal)."""
    try:
        token = bearer_token(authorization)
        if token is None:
            return None, None
        if looks_like_key(token):
            principal = await verify_key(engine, token)
            structlog.contextvars.bind_contextvars(api_key_id=principal.api_key_id)
            log.info("api_key_used", api_key_id=principal.api_key_id)
            return principal, None
        return await tokens.verify(engine, token), None
    except GatewayError as refusal:
        return None, refusal
    except SQLAlchemyError as exc:
        if retryable_database_failure(exc) is None:
            raise
        log.warning("caller_check_unavailable", error=type(exc).__name__)
        return None, ServiceUnavailable("Signed-in requests cannot be checked right now.")


async def get_context(request: Request) -> Context:
    state: Any = request.app.state
    caller, refusal = await identify_caller_of(
        state.engine, state.tokens, request.headers.get("authorization")
    )
    return Context(
        settings=state.settings,
        engine=state.engine,
        inventory=state.inventory,
        orders=state.orders,
        payments=state.payments,
        notifications=state.notifications,
        tokens=state.tokens,
        order_tokens=state.order_tokens,
        limits=state.limits,
        loaders=build_loaders(state.inventory, state.payments),
        client_address=client_address(request, state.settings.caller_tokens),
        caller=caller,
        caller_refusal=refusal,
    )

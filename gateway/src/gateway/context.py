"""The per-request context: the shared upstream clients, fresh DataLoaders, the caller and its address."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from strawberry.fastapi import BaseContext

from gateway.auth import Limits, Principal, Tokens, bearer_token
from gateway.clients.inventory import InventoryClient
from gateway.clients.notifications import NotificationsClient
from gateway.clients.orders import OrdersClient
from gateway.clients.payments import PaymentsClient
from gateway.errors import Forbidden, Unauthenticated
from gateway.loaders import Loaders, build_loaders
from gateway.order_tokens import OrderTokens
from gateway.settings import GatewaySettings
from servicekit.callers import CALLER_HEADER, identify_caller


@dataclass
class Context(BaseContext):
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
    authorization: str | None
    _principal: Principal | None = field(default=None, init=False)
    _signed_in_checked: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        super().__init__()

    def principal(self) -> Principal | None:
        """The signed-in caller; None without a token; UNAUTHENTICATED for a bad or expired one (a caller
        who sent a token meant to be signed in, and should hear that it no longer is)."""
        if not self._signed_in_checked:
            token = bearer_token(self.authorization)
            self._principal = self.tokens.verify(token) if token is not None else None
            self._signed_in_checked = True
        return self._principal

    def client_key(self) -> str:
        """Whom the per-client limits count against: ``user:<name>`` when signed in, else
        ``address:<address>`` (the shopper's own, forwarded by the web shop). A token that does not verify
        counts as its address: the fields that need it refuse it themselves."""
        try:
            principal = self.principal()
        except Unauthenticated:
            principal = None
        if principal is not None:
            return f"user:{principal.username}"
        return f"address:{self.client_address}"

    def is_admin(self) -> bool:
        principal = self.principal()
        return principal is not None and principal.role == "admin"

    def require_admin(self) -> Principal:
        """The signed-in admin, or UNAUTHENTICATED (no/bad/expired token) / FORBIDDEN (not an admin)."""
        principal = self.principal()
        if principal is None:
            raise Unauthenticated()
        if principal.role != "admin":
            raise Forbidden()
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


async def get_context(request: Request) -> Context:
    state: Any = request.app.state
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
        authorization=request.headers.get("authorization"),
    )

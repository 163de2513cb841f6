"""The per-request context: the shared upstream clients, fresh DataLoaders, the caller and its address."""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from strawberry.fastapi import BaseContext

from gateway.auth import Limits, Principal, Tokens, bearer_token
from gateway.clients.inventory import InventoryClient
from gateway.clients.orders import OrdersClient
from gateway.clients.payments import PaymentsClient
from gateway.errors import Forbidden, Unauthenticated
from gateway.loaders import Loaders, build_loaders
from gateway.order_tokens import OrderTokens
from gateway.settings import GatewaySettings


@dataclass
class Context(BaseContext):
    settings: GatewaySettings
    engine: AsyncEngine
    inventory: InventoryClient
    orders: OrdersClient
    payments: PaymentsClient
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


def client_address(request: Request, trusted_proxies: list[str]) -> str:
    """The caller's address; through a trusted proxy, the address that proxy saw (the last it appended)."""
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in trusted_proxies:
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
        tokens=state.tokens,
        order_tokens=state.order_tokens,
        limits=state.limits,
        loaders=build_loaders(state.inventory, state.payments),
        client_address=client_address(request, state.settings.trusted_proxies),
        authorization=request.headers.get("authorization"),
    )

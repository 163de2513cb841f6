"""A small typed client for the gateway's GraphQL API: one shared httpx.AsyncClient, the admin's bearer
token and the request id forwarded on every call. Cross-cutting refusals become exceptions; domain outcomes
(payload `errors`) come back as data for the page to show."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import httpx
import structlog

from servicekit.graphql_client import GraphQLTransportError, gateway_ready, post_graphql

log = structlog.get_logger()

T = TypeVar("T")
OrderStatus = Literal["PENDING", "PAID", "PAYMENT_FAILED", "CANCELLED"]
ORDER_STATUSES: tuple[OrderStatus, ...] = ("PENDING", "PAID", "PAYMENT_FAILED", "CANCELLED")


class GatewayError(Exception):
    """The gateway could not answer usefully (down, slow, masked internal error, malformed answer)."""


class RefusedError(Exception):
    """The gateway refused the request as a whole (not a domain outcome)."""


class UnauthenticatedError(RefusedError):
    """No, an invalid or an expired token: the admin has to sign in again."""


class ForbiddenError(RefusedError):
    """A valid token without the admin role."""


class BadRequestError(RefusedError):
    """The gateway did not accept the query's input (e.g. a hand-edited page cursor)."""


class RateLimitedError(RefusedError):
    def __init__(self, retry_after: int | None) -> None:
        super().__init__(f"rate limited (retry after {retry_after}s)")
        self.retry_after = retry_after


@dataclass(frozen=True)
class UserError:
    code: str
    message: str
    field: str | None = None


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    price_cents: int
    stock_qty: int


@dataclass(frozen=True)
class OrderLine:
    qty: int
    price_cents: int
    product: Product

    @property
    def subtotal_cents(self) -> int:
        return self.qty * self.price_cents


@dataclass(frozen=True)
class Order:
    id: str
    status: OrderStatus
    total_cents: int
    charge_id: str | None
    payment_failure_code: str | None
    payment_attempts: int
    created_at: datetime
    updated_at: datetime
    items: list[OrderLine] = field(default_factory=list)


@dataclass(frozen=True)
class Page(Generic[T]):
    nodes: list[T]
    end_cursor: str | None
    has_next_page: bool


@dataclass(frozen=True)
class Login:
    token: str | None
    errors: list[UserError]


@dataclass(frozen=True)
class ProductResult:
    product: Product | None
    errors: list[UserError]


@dataclass(frozen=True)
class OrderResult:
    order: Order | None
    errors: list[UserError]


_PRODUCT = "id name priceCents stockQty"
_ORDER = (
    "id status totalCents chargeId paymentFailureCode paymentAttempts createdAt updatedAt "
    f"items {{ qty priceCents product {{ {_PRODUCT} }} }}"
)
_ORDER_SUMMARY = "id status totalCents chargeId paymentFailureCode paymentAttempts createdAt updatedAt"
_ERRORS = "errors { code field message }"


def _product(data: dict[str, Any]) -> Product:
    return Product(
        id=str(data["id"]),
        name=data["name"],
        price_cents=int(data["priceCents"]),
        stock_qty=int(data["stockQty"]),
    )


def _order(data: dict[str, Any]) -> Order:
    return Order(
        id=str(data["id"]),
        status=data["status"],
        total_cents=int(data["totalCents"]),
        charge_id=None if data.get("chargeId") is None else str(data["chargeId"]),
        payment_failure_code=data.get("paymentFailureCode"),
        payment_attempts=int(data.get("paymentAttempts") or 0),
        created_at=datetime.fromisoformat(data["createdAt"]),
        updated_at=datetime.fromisoformat(data["updatedAt"]),
        items=[
            OrderLine(
                qty=int(item["qty"]), price_cents=int(item["priceCents"]), product=_product(item["product"])
            )
            for item in data.get("items") or []
        ],
    )


def _errors(data: dict[str, Any]) -> list[UserError]:
    return [UserError(code=e["code"], message=e["message"], field=e.get("field")) for e in data["errors"]]


def _page(connection: dict[str, Any], convert: Callable[[dict[str, Any]], T]) -> Page[T]:
    return Page(
        nodes=[convert(node) for node in connection["nodes"]],
        end_cursor=connection["pageInfo"]["endCursor"],
        has_next_page=connection["pageInfo"]["hasNextPage"],
    )


class GatewayClient:
    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url

    async def ready(self) -> bool:
        """Whether the gateway answers its /healthz (for this app's /readyz)."""
        return await gateway_ready(self.http, self.url)

    async def execute(
        self, query: str, variables: dict[str, Any], *, token: str | None, request_id: str | None
    ) -> dict[str, Any]:
        try:
            answer = await post_graphql(
                self.http, self.url, query, variables, token=token, request_id=request_id
            )
        except GraphQLTransportError as exc:
            raise GatewayError(f"the gateway did not answer ({exc})") from exc
        if answer.errors:
            code, message, extensions = answer.first_error
            if code == "UNAUTHENTICATED":
                raise UnauthenticatedError(message)
            if code == "FORBIDDEN":
                raise ForbiddenError(message)
            if code == "BAD_REQUEST":
                raise BadRequestError(message)
            if code == "RATE_LIMITED":
                retry_after = extensions.get("retryAfter")
                raise RateLimitedError(int(retry_after) if retry_after is not None else None)
            log.warning("gateway_error", code=code, message=message)
            raise GatewayError(message or "the gateway reported an error")
        if answer.data is None or answer.status >= 400:
            raise GatewayError(f"the gateway answered {answer.status}")
        return answer.data


class AdminGateway:
    """The admin's view of the gateway: one instance per request, carrying its token and request id."""

    def __init__(self, client: GatewayClient, *, token: str | None, request_id: str | None) -> None:
        self.client = client
        self.token = token
        self.request_id = request_id

    async def _run(self, query: str, **variables: Any) -> dict[str, Any]:
        return await self.client.execute(query, variables, token=self.token, request_id=self.request_id)

    async def login(self, username: str, password: str) -> Login:
        data = await self._run(
            "mutation($u: String!, $p: String!) "
            f"{{ login(username: $u, password: $p) {{ token {_ERRORS} }} }}",
            u=username,
            p=password,
        )
        payload = data["login"]
        return Login(token=payload.get("token"), errors=_errors(payload))

    async def products(self, *, first: int, after: str | None) -> Page[Product]:
        data = await self._run(
            "query($first: Int!, $after: String) { products(first: $first, after: $after) "
            f"{{ nodes {{ {_PRODUCT} }} pageInfo {{ endCursor hasNextPage }} }} }}",
            first=first,
            after=after,
        )
        return _page(data["products"], _product)

    async def product(self, product_id: str) -> Product | None:
        data = await self._run(f"query($id: ID!) {{ product(id: $id) {{ {_PRODUCT} }} }}", id=product_id)
        return None if data["product"] is None else _product(data["product"])

    async def _product_mutation(self, name: str, input_type: str, value: dict[str, Any]) -> ProductResult:
        data = await self._run(
            f"mutation($input: {input_type}!) {{ {name}(input: $input) "
            f"{{ product {{ {_PRODUCT} }} {_ERRORS} }} }}",
            input=value,
        )
        payload = data[name]
        product = payload.get("product")
        return ProductResult(product=None if product is None else _product(product), errors=_errors(payload))

    async def create_product(self, *, name: str, price_cents: int, stock_qty: int) -> ProductResult:
        value = {"name": name, "priceCents": price_cents, "stockQty": stock_qty}
        return await self._product_mutation("createProduct", "CreateProductInput", value)

    async def update_product(self, product_id: str, *, name: str, price_cents: int) -> ProductResult:
        value = {"id": product_id, "name": name, "priceCents": price_cents}
        return await self._product_mutation("updateProduct", "UpdateProductInput", value)

    async def adjust_stock(
        self, product_id: str, *, set_to: int | None = None, delta: int | None = None
    ) -> ProductResult:
        value: dict[str, Any] = {"productId": product_id}
        if set_to is not None:
            value["setTo"] = set_to
        if delta is not None:
            value["delta"] = delta
        return await self._product_mutation("adjustStock", "AdjustStockInput", value)

    async def orders(self, *, status: OrderStatus | None, first: int, after: str | None) -> Page[Order]:
        data = await self._run(
            "query($status: OrderStatus, $first: Int!, $after: String) "
            "{ orders(status: $status, first: $first, after: $after) "
            f"{{ nodes {{ {_ORDER_SUMMARY} }} pageInfo {{ endCursor hasNextPage }} }} }}",
            status=status,
            first=first,
            after=after,
        )
        return _page(data["orders"], _order)

    async def order(self, order_id: str) -> Order | None:
        data = await self._run(f"query($id: ID!) {{ order(id: $id) {{ {_ORDER} }} }}", id=order_id)
        return None if data["order"] is None else _order(data["order"])

    async def _order_mutation(self, name: str, order_id: str) -> OrderResult:
        data = await self._run(
            f"mutation($id: ID!) {{ {name}(orderId: $id) {{ order {{ {_ORDER} }} {_ERRORS} }} }}", id=order_id
        )
        payload = data[name]
        order = payload.get("order")
        return OrderResult(order=None if order is None else _order(order), errors=_errors(payload))

    async def capture_payment(self, order_id: str) -> OrderResult:
        return await self._order_mutation("capturePayment", order_id)

    async def cancel_order(self, order_id: str) -> OrderResult:
        return await self._order_mutation("cancelOrder", order_id)

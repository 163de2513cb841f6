"""A small typed client of the gateway's GraphQL API: the only thing the shop talks to.

One shared ``httpx.AsyncClient`` (made in the app's lifespan) carries every call, with the caller's request id
forwarded as X-Request-ID. Domain outcomes come back in payload ``errors``; everything else (the gateway
unreachable, slow, answering 5xx, or with top-level GraphQL errors) becomes a GatewayError subclass.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from servicekit.graphql_client import GraphQLTransportError, gateway_ready, post_graphql

log = structlog.get_logger()


class GatewayError(Exception):
    """The gateway could not give an answer. ``status`` is what the shop answers the browser with."""

    status = 502
    title = "Something went wrong on our side"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


class GatewayUnavailableError(GatewayError):
    status = 503
    title = "The shop is temporarily unavailable"


class GatewayBadRequestError(GatewayError):
    """The gateway refused the request itself (BAD_REQUEST), e.g. a page cursor a shopper edited by hand."""

    status = 400
    title = "That request did not make sense"


class GatewayTimeoutError(GatewayError):
    status = 504
    title = "The shop is taking too long to answer"


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    price_cents: int
    stock_qty: int


@dataclass(frozen=True)
class ProductPage:
    products: list[Product]
    end_cursor: str | None
    has_next_page: bool


@dataclass(frozen=True)
class UserError:
    code: str
    message: str
    field: str | None = None
    product_id: str | None = None
    requested: int | None = None
    available: int | None = None


@dataclass(frozen=True)
class OrderLine:
    product: Product
    qty: int
    price_cents: int

    @property
    def line_total_cents(self) -> int:
        return self.qty * self.price_cents


@dataclass(frozen=True)
class Address:
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country: str


@dataclass(frozen=True)
class Customer:
    email: str
    name: str | None
    address: Address | None


@dataclass(frozen=True)
class Refund:
    amount_cents: int
    created_at: datetime | None


@dataclass(frozen=True)
class Order:
    id: str
    status: str
    total_cents: int
    items: list[OrderLine]
    expires_at: datetime | None = None
    authorized_cents: int = 0
    captured_cents: int = 0
    refunded_cents: int = 0
    card_last4: str | None = None
    payment_failure_code: str | None = None
    customer: Customer | None = None
    refunds: tuple[Refund, ...] = ()

    @property
    def product_ids(self) -> list[str]:
        return [line.product.id for line in self.items]


@dataclass(frozen=True)
class PlaceOrderResult:
    order: Order | None
    access_token: str | None
    errors: list[UserError]


@dataclass(frozen=True)
class OrderResult:
    order: Order | None
    errors: list[UserError]


_PRODUCT_FIELDS = "id name priceCents stockQty"
# The shopper's view of an order: what the order says about its money, never the payments behind it.
_ORDER_FIELDS = (
    "id status totalCents expiresAt authorizedCents capturedCents refundedCents cardLast4 paymentFailureCode "
    "customer { email name address { line1 line2 city postalCode country } } "
    "refunds { amountCents createdAt } "
    f"items {{ qty priceCents product {{ {_PRODUCT_FIELDS} }} }}"
)
_USER_ERROR_FIELDS = "code field message productId requested available"

PRODUCTS_QUERY = f"""
query Products($first: Int!, $after: String) {{
  products(first: $first, after: $after) {{
    nodes {{ {_PRODUCT_FIELDS} }} pageInfo {{ endCursor hasNextPage }}
  }}
}}"""
PRODUCT_QUERY = f"query Product($id: ID!) {{ product(id: $id) {{ {_PRODUCT_FIELDS} }} }}"
ORDER_QUERY = (
    f"query Order($id: ID!, $token: String) {{ order(id: $id, accessToken: $token) {{ {_ORDER_FIELDS} }} }}"
)
PLACE_ORDER_MUTATION = f"""
mutation PlaceOrder($input: PlaceOrderInput!) {{
  placeOrder(input: $input) {{ order {{ {_ORDER_FIELDS} }} accessToken errors {{ {_USER_ERROR_FIELDS} }} }}
}}"""
AUTHORIZE_PAYMENT_MUTATION = f"""
mutation AuthorizePayment($input: AuthorizePaymentInput!) {{
  authorizePayment(input: $input) {{ order {{ {_ORDER_FIELDS} }} errors {{ {_USER_ERROR_FIELDS} }} }}
}}"""
# Cart pages read several products at once with aliases, a few per request to stay under the gateway's
# alias limit.
PRODUCTS_BY_ID_CHUNK = 10


def _product(data: dict[str, Any]) -> Product:
    return Product(
        id=str(data["id"]),
        name=str(data["name"]),
        price_cents=int(data["priceCents"]),
        stock_qty=int(data["stockQty"]),
    )


def _datetime(value: Any) -> datetime | None:
    """An ISO date-time, always timezone-aware (UTC when the gateway gives none), so it compares with now."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _customer(data: dict[str, Any] | None) -> Customer | None:
    if data is None:
        return None
    address = data.get("address")
    return Customer(
        email=str(data["email"]),
        name=data.get("name"),
        address=None
        if address is None
        else Address(
            line1=str(address["line1"]),
            line2=address.get("line2"),
            city=str(address["city"]),
            postal_code=str(address["postalCode"]),
            country=str(address["country"]),
        ),
    )


def _order(data: dict[str, Any]) -> Order:
    return Order(
        id=str(data["id"]),
        status=str(data["status"]),
        total_cents=int(data["totalCents"]),
        items=[
            OrderLine(
                product=_product(item["product"]), qty=int(item["qty"]), price_cents=int(item["priceCents"])
            )
            for item in data["items"]
        ],
        expires_at=_datetime(data.get("expiresAt")),
        authorized_cents=int(data.get("authorizedCents") or 0),
        captured_cents=int(data.get("capturedCents") or 0),
        refunded_cents=int(data.get("refundedCents") or 0),
        card_last4=data.get("cardLast4"),
        payment_failure_code=data.get("paymentFailureCode"),
        customer=_customer(data.get("customer")),
        refunds=tuple(
            Refund(amount_cents=int(r["amountCents"]), created_at=_datetime(r.get("createdAt")))
            for r in data.get("refunds") or []
        ),
    )


def _user_error(data: dict[str, Any]) -> UserError:
    return UserError(
        code=str(data["code"]),
        message=str(data.get("message") or ""),
        field=data.get("field"),
        product_id=None if data.get("productId") is None else str(data["productId"]),
        requested=data.get("requested"),
        available=data.get("available"),
    )


class GatewayClient:
    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self._http = http
        self._url = url

    async def ready(self) -> bool:
        """Whether the gateway answers its /healthz (for this app's /readyz)."""
        return await gateway_ready(self._http, self._url)

    async def execute(
        self, query: str, variables: dict[str, Any] | None = None, *, request_id: str | None = None
    ) -> dict[str, Any]:
        """The ``data`` of a GraphQL response; raises GatewayError for anything that is not one."""
        try:
            answer = await post_graphql(self._http, self._url, query, variables, request_id=request_id)
        except GraphQLTransportError as exc:
            if exc.timeout:
                raise GatewayTimeoutError("The gateway did not answer in time.") from exc
            if exc.status is None:
                raise GatewayUnavailableError("The gateway cannot be reached.") from exc
            if exc.status in {502, 503, 504}:
                raise GatewayUnavailableError(f"The gateway answered {exc.status}.") from exc
            raise GatewayError(str(exc)) from exc
        if answer.errors:
            code, message, extensions = answer.first_error
            log.warning("gateway_graphql_error", code=code, message=message)
            if code == "RATE_LIMITED":
                retry = extensions.get("retryAfter")
                raise GatewayUnavailableError(
                    "Too many requests right now.", code=code, retry_after=int(retry) if retry else None
                )
            if code == "BAD_REQUEST":
                raise GatewayBadRequestError(message or "Bad request", code=code)
            if code in {"PAYMENT_UNAVAILABLE", "UNAVAILABLE", "SERVICE_UNAVAILABLE"}:
                retry = extensions.get("retryAfter")
                raise GatewayUnavailableError(
                    message or "Unavailable", code=code, retry_after=retry if isinstance(retry, int) else None
                )
            raise GatewayError(message or "GraphQL error", code=code)
        if answer.data is None:
            raise GatewayError("The gateway answered without data.")
        return answer.data

    async def products(self, first: int, after: str | None, *, request_id: str | None = None) -> ProductPage:
        data = await self.execute(PRODUCTS_QUERY, {"first": first, "after": after}, request_id=request_id)
        connection = data["products"]
        return ProductPage(
            products=[_product(node) for node in connection["nodes"]],
            end_cursor=connection["pageInfo"]["endCursor"],
            has_next_page=bool(connection["pageInfo"]["hasNextPage"]),
        )

    async def product(self, product_id: str, *, request_id: str | None = None) -> Product | None:
        data = await self.execute(PRODUCT_QUERY, {"id": product_id}, request_id=request_id)
        return None if data["product"] is None else _product(data["product"])

    async def products_by_id(
        self, product_ids: list[str], *, request_id: str | None = None
    ) -> dict[str, Product]:
        """The products that exist among ``product_ids`` (missing ones are simply absent)."""
        found: dict[str, Product] = {}
        for start in range(0, len(product_ids), PRODUCTS_BY_ID_CHUNK):
            chunk = product_ids[start : start + PRODUCTS_BY_ID_CHUNK]
            params = ", ".join(f"$id{i}: ID!" for i in range(len(chunk)))
            fields = " ".join(f"p{i}: product(id: $id{i}) {{ {_PRODUCT_FIELDS} }}" for i in range(len(chunk)))
            variables = {f"id{i}": pid for i, pid in enumerate(chunk)}
            data = await self.execute(
                f"query Cart({params}) {{ {fields} }}", variables, request_id=request_id
            )
            for i in range(len(chunk)):
                node = data.get(f"p{i}")
                if node is not None:
                    product = _product(node)
                    found[product.id] = product
        return found

    async def order(self, order_id: str, access_token: str, *, request_id: str | None = None) -> Order | None:
        """The order, if ``access_token`` is its own; None otherwise, exactly as for an order that does not
        exist."""
        data = await self.execute(ORDER_QUERY, {"id": order_id, "token": access_token}, request_id=request_id)
        return None if data["order"] is None else _order(data["order"])

    async def place_order(
        self,
        lines: list[tuple[str, int]],
        idempotency_key: str,
        customer: dict[str, Any],
        *,
        request_id: str | None = None,
    ) -> PlaceOrderResult:
        variables = {
            "input": {
                "items": [{"productId": pid, "qty": qty} for pid, qty in lines],
                "idempotencyKey": idempotency_key,
                "customer": customer,
            }
        }
        data = await self.execute(PLACE_ORDER_MUTATION, variables, request_id=request_id)
        payload = data["placeOrder"]
        return PlaceOrderResult(
            order=None if payload.get("order") is None else _order(payload["order"]),
            access_token=payload.get("accessToken"),
            errors=[_user_error(e) for e in payload.get("errors") or []],
        )

    async def authorize_payment(
        self, order_id: str, access_token: str, card_number: str, *, request_id: str | None = None
    ) -> OrderResult:
        """Asks for the order's total to be authorized on the card. A decline is an answer: the order
        (PAYMENT_FAILED) with a PAYMENT_DECLINED error."""
        variables = {"input": {"orderId": order_id, "accessToken": access_token, "cardNumber": card_number}}
        data = await self.execute(AUTHORIZE_PAYMENT_MUTATION, variables, request_id=request_id)
        payload = data["authorizePayment"]
        return OrderResult(
            order=None if payload.get("order") is None else _order(payload["order"]),
            errors=[_user_error(e) for e in payload.get("errors") or []],
        )

"""A small typed client for the gateway's GraphQL API: one shared httpx.AsyncClient, the admin's bearer
token and the request id forwarded on every call. Cross-cutting refusals become exceptions; domain outcomes
(payload `errors`) come back as data for the page to show."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

import httpx
import structlog

from servicekit.graphql_client import GraphQLTransportError, gateway_ready, post_graphql
from servicekit.rules import OrderStatus

log = structlog.get_logger()

T = TypeVar("T")


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
    low_stock_threshold: int | None = None  # stock at or below it opens a low-stock alert


@dataclass(frozen=True)
class OrderLine:
    qty: int
    price_cents: int
    product: Product

    @property
    def subtotal_cents(self) -> int:
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
    id: str
    amount_cents: int
    reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class Payment:
    """One authorization attempt at payments, as the admin sees it (the card number is never there)."""

    id: str
    status: str
    amount_cents: int
    captured_cents: int
    refunded_cents: int
    card_brand: str | None
    card_last4: str | None
    failure_code: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Order:
    id: str
    status: OrderStatus
    total_cents: int
    payment_failure_code: str | None
    payment_attempts: int
    created_at: datetime
    updated_at: datetime
    customer: Customer | None = None
    expires_at: datetime | None = None
    authorized_cents: int = 0
    captured_cents: int = 0
    refunded_cents: int = 0
    card_last4: str | None = None
    items: list[OrderLine] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)

    @property
    def refundable_cents(self) -> int:
        """What a refund can still give back: captured and not yet refunded."""
        return max(self.captured_cents - self.refunded_cents, 0)


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


_PRODUCT = "id name priceCents stockQty lowStockThreshold"
_ORDER_SUMMARY = (
    "id status totalCents paymentFailureCode paymentAttempts createdAt updatedAt customer { email }"
)
_ORDER = (
    f"{_ORDER_SUMMARY} expiresAt authorizedCents capturedCents refundedCents cardLast4 "
    "customer { email name address { line1 line2 city postalCode country } } "
    "refunds { id amountCents reason createdAt } "
    "payments { id status amountCents capturedCents refundedCents cardBrand cardLast4 failureCode "
    "createdAt updatedAt } "
    f"items {{ qty priceCents product {{ {_PRODUCT} }} }}"
)
_ERRORS = "errors { code field message }"


def _product(data: dict[str, Any]) -> Product:
    return Product(
        id=str(data["id"]),
        name=data["name"],
        price_cents=int(data["priceCents"]),
        stock_qty=int(data["stockQty"]),
        low_stock_threshold=None if data.get("lowStockThreshold") is None else int(data["lowStockThreshold"]),
    )


def _datetime(value: str) -> datetime:
    """An ISO date-time, always timezone-aware (UTC when the gateway gives none)."""
    parsed = datetime.fromisoformat(value)
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


def _payment(data: dict[str, Any]) -> Payment:
    return Payment(
        id=str(data["id"]),
        status=str(data["status"]),
        amount_cents=int(data["amountCents"]),
        captured_cents=int(data["capturedCents"]),
        refunded_cents=int(data["refundedCents"]),
        card_brand=data.get("cardBrand"),
        card_last4=data.get("cardLast4"),
        failure_code=data.get("failureCode"),
        created_at=_datetime(data["createdAt"]),
        updated_at=_datetime(data["updatedAt"]),
    )


def _order(data: dict[str, Any]) -> Order:
    expires_at = data.get("expiresAt")
    return Order(
        id=str(data["id"]),
        status=data["status"],
        total_cents=int(data["totalCents"]),
        payment_failure_code=data.get("paymentFailureCode"),
        payment_attempts=int(data.get("paymentAttempts") or 0),
        created_at=_datetime(data["createdAt"]),
        updated_at=_datetime(data["updatedAt"]),
        customer=_customer(data.get("customer")),
        expires_at=None if expires_at is None else _datetime(expires_at),
        authorized_cents=int(data.get("authorizedCents") or 0),
        captured_cents=int(data.get("capturedCents") or 0),
        refunded_cents=int(data.get("refundedCents") or 0),
        card_last4=data.get("cardLast4"),
        items=[
            OrderLine(
                qty=int(item["qty"]), price_cents=int(item["priceCents"]), product=_product(item["product"])
            )
            for item in data.get("items") or []
        ],
        refunds=[
            Refund(
                id=str(r["id"]),
                amount_cents=int(r["amountCents"]),
                reason=r.get("reason"),
                created_at=_datetime(r["createdAt"]),
            )
            for r in data.get("refunds") or []
        ],
        payments=[_payment(p) for p in data.get("payments") or []],
    )


def _errors(data: dict[str, Any]) -> list[UserError]:
    return [UserError(code=e["code"], message=e["message"], field=e.get("field")) for e in data["errors"]]


def _page(connection: dict[str, Any], convert: Callable[[dict[str, Any]], T]) -> Page[T]:
    return Page(
        nodes=[convert(node) for node in connection["nodes"]],
        end_cursor=connection["pageInfo"]["endCursor"],
        has_next_page=connection["pageInfo"]["hasNextPage"],
    )


@dataclass(frozen=True)
class Email:
    id: str
    kind: str
    to: str
    subject: str
    sent_at: datetime
    text_body: str = ""


@dataclass(frozen=True)
class WebhookAttempt:
    attempt: int
    attempted_at: datetime
    duration_ms: int
    response_code: int | None
    error: str | None
    outcome: str


@dataclass(frozen=True)
class WebhookDelivery:
    id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_response_code: int | None
    created_at: datetime
    attempt_log: list[WebhookAttempt]


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    url: str
    event_types: list[str]
    description: str
    created_at: datetime
    deliveries: list[WebhookDelivery] = field(default_factory=list)


@dataclass(frozen=True)
class RegisteredEndpoint:
    endpoint: WebhookEndpoint | None
    secret: str | None
    errors: list[UserError]


@dataclass(frozen=True)
class LowStockAlert:
    id: str
    product_id: str
    product_name: str
    threshold: int
    stock_at_open: int
    stock_at_close: int | None
    opened_at: datetime
    closed_at: datetime | None
    open: bool


@dataclass(frozen=True)
class SalesDay:
    day: date
    units: int
    revenue_cents: int
    refunds_cents: int


@dataclass(frozen=True)
class ProductSales:
    product_id: str
    name: str | None
    units: int
    revenue_cents: int
    refunds_cents: int


@dataclass(frozen=True)
class SalesReport:
    first: date
    last: date
    units: int
    revenue_cents: int
    refunds_cents: int
    days: list[SalesDay]
    top_products: list[ProductSales]


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True)
class ApiKeyScope:
    scope: str  # the schema's enum name, e.g. ORDERS_READ
    name: str  # as written in logs, e.g. orders:read
    description: str


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey | None
    key: str | None
    errors: list[UserError]


_API_KEY = "id name prefix scopes createdAt lastUsedAt revokedAt"


def _api_key(data: dict[str, Any]) -> ApiKey:
    return ApiKey(
        id=str(data["id"]),
        name=str(data["name"]),
        prefix=str(data["prefix"]),
        scopes=[str(scope) for scope in data["scopes"]],
        created_at=_datetime(data["createdAt"]),
        last_used_at=_optional_datetime(data.get("lastUsedAt")),
        revoked_at=_optional_datetime(data.get("revokedAt")),
    )


_EMAIL_SUMMARY = "id kind to subject sentAt"
_ENDPOINT = "id url eventTypes description createdAt"
_DELIVERY = (
    "id eventId eventType status attempts nextAttemptAt lastResponseCode createdAt "
    "attemptLog { attempt attemptedAt durationMs responseCode error outcome }"
)


def _optional_datetime(value: str | None) -> datetime | None:
    return None if value is None else _datetime(value)


def _email(data: dict[str, Any]) -> Email:
    return Email(
        id=str(data["id"]),
        kind=str(data["kind"]),
        to=str(data["to"]),
        subject=str(data["subject"]),
        sent_at=_datetime(data["sentAt"]),
        text_body=str(data.get("textBody") or ""),
    )


def _delivery(data: dict[str, Any]) -> WebhookDelivery:
    return WebhookDelivery(
        id=str(data["id"]),
        event_id=str(data["eventId"]),
        event_type=str(data["eventType"]),
        status=str(data["status"]),
        attempts=int(data["attempts"]),
        next_attempt_at=_optional_datetime(data.get("nextAttemptAt")),
        last_response_code=data.get("lastResponseCode"),
        created_at=_datetime(data["createdAt"]),
        attempt_log=[
            WebhookAttempt(
                attempt=int(a["attempt"]),
                attempted_at=_datetime(a["attemptedAt"]),
                duration_ms=int(a["durationMs"]),
                response_code=a.get("responseCode"),
                error=a.get("error"),
                outcome=str(a["outcome"]),
            )
            for a in data.get("attemptLog") or []
        ],
    )


def _endpoint(data: dict[str, Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=str(data["id"]),
        url=str(data["url"]),
        event_types=[str(t) for t in data["eventTypes"]],
        description=str(data.get("description") or ""),
        created_at=_datetime(data["createdAt"]),
        deliveries=[_delivery(d) for d in data.get("deliveries") or []],
    )


def _alert(data: dict[str, Any]) -> LowStockAlert:
    return LowStockAlert(
        id=str(data["id"]),
        product_id=str(data["productId"]),
        product_name=str(data["productName"]),
        threshold=int(data["threshold"]),
        stock_at_open=int(data["stockAtOpen"]),
        stock_at_close=data.get("stockAtClose"),
        opened_at=_datetime(data["openedAt"]),
        closed_at=_optional_datetime(data.get("closedAt")),
        open=bool(data["open"]),
    )


def _sales(data: dict[str, Any]) -> SalesReport:
    return SalesReport(
        first=date.fromisoformat(data["from"]),
        last=date.fromisoformat(data["to"]),
        units=int(data["units"]),
        revenue_cents=int(data["revenueCents"]),
        refunds_cents=int(data["refundsCents"]),
        days=[
            SalesDay(
                day=date.fromisoformat(d["day"]),
                units=int(d["units"]),
                revenue_cents=int(d["revenueCents"]),
                refunds_cents=int(d["refundsCents"]),
            )
            for d in data["days"]
        ],
        top_products=[
            ProductSales(
                product_id=str(p["productId"]),
                name=(p.get("product") or {}).get("name"),
                units=int(p["units"]),
                revenue_cents=int(p["revenueCents"]),
                refunds_cents=int(p["refundsCents"]),
            )
            for p in data["topProducts"]
        ],
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

    async def sign_out(self) -> None:
        """End this session's token at the gateway (it is refused from now on, wherever it was copied)."""
        await self._run(f"mutation {{ signOut {{ {_ERRORS} }} }}")

    async def change_password(self, current: str, new: str) -> Login:
        data = await self._run(
            "mutation($c: String!, $n: String!) "
            f"{{ changePassword(currentPassword: $c, newPassword: $n) {{ token {_ERRORS} }} }}",
            c=current,
            n=new,
        )
        payload = data["changePassword"]
        return Login(token=payload.get("token"), errors=_errors(payload))

    async def accounts(self) -> list[Account]:
        data = await self._run("{ accounts { username role createdAt disabledAt } }")
        return [
            Account(
                username=str(a["username"]),
                role=str(a["role"]),
                created_at=_datetime(a["createdAt"]),
                disabled_at=_optional_datetime(a.get("disabledAt")),
            )
            for a in data["accounts"]
        ]

    async def set_account_disabled(self, username: str, disabled: bool) -> list[UserError]:
        data = await self._run(
            "mutation($u: String!, $d: Boolean!) "
            f"{{ setAccountDisabled(username: $u, disabled: $d) {{ account {{ username }} {_ERRORS} }} }}",
            u=username,
            d=disabled,
        )
        return _errors(data["setAccountDisabled"])

    async def api_keys(self) -> tuple[list[ApiKey], list[ApiKeyScope]]:
        data = await self._run(f"{{ apiKeys {{ {_API_KEY} }} apiKeyScopes {{ scope name description }} }}")
        scopes = [
            ApiKeyScope(scope=str(s["scope"]), name=str(s["name"]), description=str(s["description"]))
            for s in data["apiKeyScopes"]
        ]
        return [_api_key(k) for k in data["apiKeys"]], scopes

    async def create_api_key(self, name: str, scopes: list[str]) -> CreatedKey:
        data = await self._run(
            "mutation($n: String!, $s: [Scope!]!) "
            f"{{ createApiKey(name: $n, scopes: $s) {{ key apiKey {{ {_API_KEY} }} {_ERRORS} }} }}",
            n=name,
            s=scopes,
        )
        payload = data["createApiKey"]
        made = payload.get("apiKey")
        return CreatedKey(
            api_key=None if made is None else _api_key(made), key=payload.get("key"), errors=_errors(payload)
        )

    async def revoke_api_key(self, key_id: str) -> list[UserError]:
        data = await self._run(
            f"mutation($id: ID!) {{ revokeApiKey(id: $id) {{ apiKey {{ id }} {_ERRORS} }} }}", id=key_id
        )
        return _errors(data["revokeApiKey"])

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

    async def update_product(
        self, product_id: str, *, name: str, price_cents: int, **threshold: int | None
    ) -> ProductResult:
        """``low_stock_threshold=`` sets the threshold (None removes it); without it, it is kept."""
        value: dict[str, Any] = {"id": product_id, "name": name, "priceCents": price_cents}
        if "low_stock_threshold" in threshold:
            value["lowStockThreshold"] = threshold.pop("low_stock_threshold")
        if threshold:
            raise TypeError(f"unexpected arguments: {sorted(threshold)}")
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

    async def _order_mutation(self, name: str, arguments: str, **variables: Any) -> OrderResult:
        data = await self._run(
            f"mutation({arguments}) {{ {name}({', '.join(f'{v}: ${v}' for v in variables)}) "
            f"{{ order {{ {_ORDER} }} {_ERRORS} }} }}",
            **variables,
        )
        payload = data[name]
        order = payload.get("order")
        return OrderResult(order=None if order is None else _order(order), errors=_errors(payload))

    async def capture_payment(self, order_id: str) -> OrderResult:
        return await self._order_mutation("capturePayment", "$orderId: ID!", orderId=order_id)

    async def cancel_order(self, order_id: str) -> OrderResult:
        return await self._order_mutation("cancelOrder", "$orderId: ID!", orderId=order_id)

    async def refund_payment(
        self, order_id: str, *, amount_cents: int, reason: str, idempotency_key: str
    ) -> OrderResult:
        value = {
            "orderId": order_id,
            "amountCents": amount_cents,
            "reason": reason,
            "idempotencyKey": idempotency_key,
        }
        return await self._order_mutation("refundPayment", "$input: RefundPaymentInput!", input=value)

    # --- What the notifications worker did (outgoing mail, webhooks, alerts, sales) -------------------------

    async def emails(self, *, first: int, after: str | None) -> Page[Email]:
        data = await self._run(
            "query($first: Int!, $after: String) { emails(first: $first, after: $after) "
            f"{{ nodes {{ {_EMAIL_SUMMARY} }} pageInfo {{ endCursor hasNextPage }} }} }}",
            first=first,
            after=after,
        )
        return _page(data["emails"], _email)

    async def email(self, email_id: str) -> Email | None:
        data = await self._run(
            f"query($id: ID!) {{ email(id: $id) {{ {_EMAIL_SUMMARY} textBody }} }}", id=email_id
        )
        return None if data["email"] is None else _email(data["email"])

    async def webhook_event_types(self) -> list[str]:
        data = await self._run("{ webhookEventTypes }")
        return [str(name) for name in data["webhookEventTypes"]]

    async def webhook_endpoints(self) -> list[WebhookEndpoint]:
        data = await self._run(f"{{ webhookEndpoints {{ {_ENDPOINT} }} }}")
        return [_endpoint(e) for e in data["webhookEndpoints"]]

    async def webhook_endpoint(self, endpoint_id: str, *, deliveries: int) -> WebhookEndpoint | None:
        data = await self._run(
            f"query($id: ID!, $first: Int!) {{ webhookEndpoint(id: $id) {{ {_ENDPOINT} "
            f"deliveries(first: $first) {{ {_DELIVERY} }} }} }}",
            id=endpoint_id,
            first=deliveries,
        )
        return None if data["webhookEndpoint"] is None else _endpoint(data["webhookEndpoint"])

    async def register_webhook_endpoint(
        self, *, url: str, event_types: list[str], description: str
    ) -> RegisteredEndpoint:
        data = await self._run(
            "mutation($url: String!, $types: [String!]!, $description: String) "
            "{ registerWebhookEndpoint(url: $url, eventTypes: $types, description: $description) "
            f"{{ endpoint {{ {_ENDPOINT} }} secret {_ERRORS} }} }}",
            url=url,
            types=event_types,
            description=description,
        )
        payload = data["registerWebhookEndpoint"]
        endpoint = payload.get("endpoint")
        return RegisteredEndpoint(
            endpoint=None if endpoint is None else _endpoint(endpoint),
            secret=payload.get("secret"),
            errors=_errors(payload),
        )

    async def delete_webhook_endpoint(self, endpoint_id: str) -> list[UserError]:
        data = await self._run(
            f"mutation($id: ID!) {{ deleteWebhookEndpoint(id: $id) {{ deletedId {_ERRORS} }} }}",
            id=endpoint_id,
        )
        return _errors(data["deleteWebhookEndpoint"])

    async def redeliver_webhook(self, delivery_id: str) -> list[UserError]:
        data = await self._run(
            f"mutation($id: ID!) {{ redeliverWebhook(deliveryId: $id) {{ delivery {{ id }} {_ERRORS} }} }}",
            id=delivery_id,
        )
        return _errors(data["redeliverWebhook"])

    async def low_stock_alerts(self, *, first: int) -> list[LowStockAlert]:
        data = await self._run(
            "query($first: Int!) { lowStockAlerts(first: $first) { id productId productName threshold "
            "stockAtOpen stockAtClose openedAt closedAt open } }",
            first=first,
        )
        return [_alert(a) for a in data["lowStockAlerts"]]

    async def sales_report(self, *, first: date, last: date) -> SalesReport:
        data = await self._run(
            "query($from: Date!, $to: Date!) { salesReport(from: $from, to: $to) { from to units "
            "revenueCents refundsCents days { day units revenueCents refundsCents } "
            "topProducts { productId units revenueCents refundsCents product { name } } } }",
            **{"from": first.isoformat(), "to": last.isoformat()},
        )
        return _sales(data["salesReport"])

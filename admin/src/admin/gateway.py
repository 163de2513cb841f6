"""The admin's client of the gateway's GraphQL API: one shared httpx.AsyncClient, the admin's bearer token and
the request id forwarded on every call. Cross-cutting refusals become exceptions; domain outcomes (payload
`errors`) come back as data for the page to show.

The operations are in admin/graphql/operations.graphql; their typed client (admin.graphql_client, models and
all) is generated from them and gateway/schema.graphql by ``uv run task codegen``. This module wraps it in the
admin's terms and errors."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import httpx
import structlog

from admin.graphql_client import (
    AccountsAccounts,
    AdjustStockInput,
    AdminGraphQLClient,
    ApiKeyFields,
    ApiKeysApiKeyScopes,
    CreateApiKeyCreateApiKey,
    CreateProductInput,
    EmailEmail,
    EmailsEmails,
    LoginPayloadFields,
    LowStockAlertsLowStockAlerts,
    OrderFields,
    OrderFieldsPayments,
    OrderFieldsRefunds,
    OrderPayloadFields,
    OrdersOrders,
    OrderStatus,
    ProductFields,
    ProductPayloadFields,
    ProductsProducts,
    RefundPaymentInput,
    RegisterWebhookEndpointRegisterWebhookEndpoint,
    SalesReportSalesReport,
    Scope,
    UpdateProductInput,
    UserErrorFields,
    WebhookEndpointFields,
    WebhookEndpointWebhookEndpoint,
)
from servicekit.graphql_client import GraphQLErrorAnswer, GraphQLTransportError, gateway_ready, refusal
from servicekit.rules import OrderStatus as OrderStatusName

log = structlog.get_logger()

# What the pages are given: the generated models of admin/graphql/operations.graphql's fragments and answers.
UserError = UserErrorFields
Product = ProductFields
Order = OrderFields  # an order's page; a page of orders holds OrderSummaryFields
Payment = OrderFieldsPayments
Refund = OrderFieldsRefunds
Login = LoginPayloadFields  # .token, .errors
ProductResult = ProductPayloadFields  # .product, .errors
OrderResult = OrderPayloadFields  # .order, .errors
ApiKey = ApiKeyFields
ApiKeyScope = ApiKeysApiKeyScopes
CreatedKey = CreateApiKeyCreateApiKey  # .api_key, .key, .errors
Account = AccountsAccounts
Email = EmailEmail
WebhookEndpoint = WebhookEndpointFields
RegisteredEndpoint = RegisterWebhookEndpointRegisterWebhookEndpoint  # .endpoint, .secret, .errors
LowStockAlert = LowStockAlertsLowStockAlerts
SalesReport = SalesReportSalesReport


def refundable_cents(order: Order) -> int:
    """What a refund can still give back: captured and not yet refunded."""
    return max(order.captured_cents - order.refunded_cents, 0)


class GatewayError(Exception):
    """The gateway could not answer usefully (down, slow, masked internal error, malformed answer);
    ``retry_after``: the seconds it asked for when it said its dependency is down (SERVICE_UNAVAILABLE)."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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


def _answer_error(exc: GraphQLErrorAnswer) -> Exception:
    if not exc.answer.errors:
        return GatewayError(f"the gateway answered {exc.answer.status}")
    refused = refusal(exc)
    if refused.code == "UNAUTHENTICATED":
        return UnauthenticatedError(refused.message)
    if refused.code == "FORBIDDEN":
        return ForbiddenError(refused.message)
    if refused.code == "BAD_REQUEST":
        return BadRequestError(refused.message)
    if refused.code == "RATE_LIMITED":
        return RateLimitedError(refused.retry_after)
    log.warning("gateway_error", code=refused.code, message=refused.message)
    if refused.retryable:
        return GatewayError(refused.message or "the gateway is unavailable", retry_after=refused.retry_after)
    return GatewayError(refused.message or "the gateway reported an error")


@contextmanager
def _gateway_errors() -> Iterator[None]:
    """Anything but an answer with data, as the admin's own errors."""
    try:
        yield
    except GraphQLTransportError as exc:
        raise GatewayError(f"the gateway did not answer ({exc})") from exc
    except GraphQLErrorAnswer as exc:
        raise _answer_error(exc) from None


class GatewayClient:
    """The admin's one client of the gateway (made in the app's lifespan), shared by every request."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url
        self.graphql = AdminGraphQLClient(url, http)

    async def ready(self) -> bool:
        """Whether the gateway answers its /healthz (for this app's /readyz)."""
        return await gateway_ready(self.http, self.url)


class AdminGateway:
    """The admin's view of the gateway: one instance per request, carrying its token and request id."""

    def __init__(self, client: GatewayClient, *, token: str | None, request_id: str | None) -> None:
        self.client = client
        self.token = token
        self.request_id = request_id
        self._gql = client.graphql

    @property
    def _call(self) -> dict[str, str | None]:
        return {"token": self.token, "request_id": self.request_id}

    async def login(self, username: str, password: str) -> Login:
        with _gateway_errors():
            return await self._gql.login(username, password, **self._call)

    async def sign_out(self) -> None:
        """End this session's token at the gateway (it is refused from now on, wherever it was copied)."""
        with _gateway_errors():
            await self._gql.sign_out(**self._call)

    async def change_password(self, current: str, new: str) -> Login:
        with _gateway_errors():
            return await self._gql.change_password(current, new, **self._call)

    async def accounts(self) -> list[Account]:
        with _gateway_errors():
            return await self._gql.accounts(**self._call)

    async def set_account_disabled(self, username: str, disabled: bool) -> list[UserError]:
        with _gateway_errors():
            return list((await self._gql.set_account_disabled(username, disabled, **self._call)).errors)

    async def api_keys(self) -> tuple[list[ApiKey], list[ApiKeyScope]]:
        with _gateway_errors():
            answer = await self._gql.api_keys(**self._call)
        return list(answer.api_keys), answer.api_key_scopes

    async def create_api_key(self, name: str, scopes: list[str]) -> CreatedKey:
        with _gateway_errors():
            return await self._gql.create_api_key(name, [Scope(s) for s in scopes], **self._call)

    async def revoke_api_key(self, key_id: str) -> list[UserError]:
        with _gateway_errors():
            return list((await self._gql.revoke_api_key(key_id, **self._call)).errors)

    async def products(self, *, first: int, after: str | None) -> ProductsProducts:
        with _gateway_errors():
            return await self._gql.products(first, after, **self._call)

    async def product(self, product_id: str) -> Product | None:
        with _gateway_errors():
            return await self._gql.product(product_id, **self._call)

    async def create_product(self, *, name: str, price_cents: int, stock_qty: int) -> ProductResult:
        value = CreateProductInput(name=name, price_cents=price_cents, stock_qty=stock_qty)
        with _gateway_errors():
            return await self._gql.create_product(value, **self._call)

    async def update_product(
        self, product_id: str, *, name: str, price_cents: int, **threshold: int | None
    ) -> ProductResult:
        """``low_stock_threshold=`` sets the threshold (None removes it); without it, it is kept."""
        value = UpdateProductInput(id=product_id, name=name, price_cents=price_cents)
        if "low_stock_threshold" in threshold:
            value.low_stock_threshold = threshold.pop("low_stock_threshold")  # sent, even as null
        if threshold:
            raise TypeError(f"unexpected arguments: {sorted(threshold)}")
        with _gateway_errors():
            return await self._gql.update_product(value, **self._call)

    async def adjust_stock(
        self, product_id: str, *, set_to: int | None = None, delta: int | None = None
    ) -> ProductResult:
        value = AdjustStockInput(product_id=product_id)
        if set_to is not None:
            value.set_to = set_to
        if delta is not None:
            value.delta = delta
        with _gateway_errors():
            return await self._gql.adjust_stock(value, **self._call)

    async def orders(self, *, status: OrderStatusName | None, first: int, after: str | None) -> OrdersOrders:
        with _gateway_errors():
            return await self._gql.orders(
                first, status=None if status is None else OrderStatus(status), after=after, **self._call
            )

    async def order(self, order_id: str) -> Order | None:
        with _gateway_errors():
            return await self._gql.order(order_id, **self._call)

    async def capture_payment(self, order_id: str) -> OrderResult:
        with _gateway_errors():
            return await self._gql.capture_payment(order_id, **self._call)

    async def cancel_order(self, order_id: str) -> OrderResult:
        with _gateway_errors():
            return await self._gql.cancel_order(order_id, **self._call)

    async def refund_payment(
        self, order_id: str, *, amount_cents: int, reason: str, idempotency_key: str
    ) -> OrderResult:
        value = RefundPaymentInput(
            order_id=order_id, amount_cents=amount_cents, reason=reason, idempotency_key=idempotency_key
        )
        with _gateway_errors():
            return await self._gql.refund_payment(value, **self._call)

    # --- What the notifications worker did (outgoing mail, webhooks, alerts, sales) -------------------------

    async def emails(self, *, first: int, after: str | None) -> EmailsEmails:
        with _gateway_errors():
            return await self._gql.emails(first, after, **self._call)

    async def email(self, email_id: str) -> Email | None:
        with _gateway_errors():
            return await self._gql.email(email_id, **self._call)

    async def webhook_event_types(self) -> list[str]:
        with _gateway_errors():
            return await self._gql.webhook_event_types(**self._call)

    async def webhook_endpoints(self) -> list[WebhookEndpoint]:
        with _gateway_errors():
            return list(await self._gql.webhook_endpoints(**self._call))

    async def webhook_endpoint(
        self, endpoint_id: str, *, deliveries: int
    ) -> WebhookEndpointWebhookEndpoint | None:
        with _gateway_errors():
            return await self._gql.webhook_endpoint(endpoint_id, deliveries, **self._call)

    async def register_webhook_endpoint(
        self, *, url: str, event_types: list[str], description: str
    ) -> RegisteredEndpoint:
        with _gateway_errors():
            return await self._gql.register_webhook_endpoint(url, event_types, description, **self._call)

    async def delete_webhook_endpoint(self, endpoint_id: str) -> list[UserError]:
        with _gateway_errors():
            return list((await self._gql.delete_webhook_endpoint(endpoint_id, **self._call)).errors)

    async def redeliver_webhook(self, delivery_id: str) -> list[UserError]:
        with _gateway_errors():
            return list((await self._gql.redeliver_webhook(delivery_id, **self._call)).errors)

    async def low_stock_alerts(self, *, first: int) -> list[LowStockAlert]:
        with _gateway_errors():
            return await self._gql.low_stock_alerts(first, **self._call)

    async def sales_report(self, *, first: date, last: date) -> SalesReport:
        with _gateway_errors():
            return await self._gql.sales_report(first, last, **self._call)

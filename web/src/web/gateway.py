"""The shop's client of the gateway's GraphQL API: the only thing the shop talks to.

The operations are in web/graphql/operations.graphql; their typed client (web.graphql_client, models and
all) is generated from them and gateway/schema.graphql by ``uv run task codegen``. This module wraps it in
the shop's terms and errors. One shared ``httpx.AsyncClient`` (made in the app's lifespan) carries every
call, with the caller's request id forwarded as X-Request-ID (servicekit.graphql_client). Domain outcomes
come back in payload ``errors``; everything else (the gateway unreachable, slow, answering 5xx, or with
top-level GraphQL errors) becomes a GatewayError subclass.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import structlog

from servicekit.graphql_client import (
    GraphQLErrorAnswer,
    GraphQLTransportError,
    gateway_ready,
    refusal,
)
from web.graphql_client import (
    AuthorizePaymentAuthorizePayment,
    AuthorizePaymentInput,
    CustomerInput,
    OrderFields,
    OrderLineInput,
    PlaceOrderInput,
    PlaceOrderPlaceOrder,
    ProductFields,
    ProductsProducts,
    ShopGraphQLClient,
    UserErrorFields,
)

log = structlog.get_logger()

# What the pages are given: the generated models of web/graphql/operations.graphql's fragments and answers.
Product = ProductFields
ProductPage = ProductsProducts  # .nodes, .page_info.end_cursor, .page_info.has_next_page
Order = OrderFields
UserError = UserErrorFields
PlaceOrderResult = PlaceOrderPlaceOrder  # .order, .access_token, .errors
OrderResult = AuthorizePaymentAuthorizePayment  # .order, .errors

# productsByIds answers at most this many ids at once (a cart holds at most web.cart.MAX_LINES).
PRODUCTS_BY_IDS_MAX = 100


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


def _transport_error(exc: GraphQLTransportError) -> GatewayError:
    if exc.timeout:
        return GatewayTimeoutError("The gateway did not answer in time.")
    if exc.status is None:
        return GatewayUnavailableError("The gateway cannot be reached.")
    if exc.status in {502, 503, 504}:
        return GatewayUnavailableError(f"The gateway answered {exc.status}.")
    return GatewayError(str(exc))


def _answer_error(exc: GraphQLErrorAnswer) -> GatewayError:
    if not exc.answer.errors:
        return GatewayError("The gateway answered without data.")
    refused = refusal(exc)
    log.warning("gateway_graphql_error", code=refused.code, message=refused.message)
    if refused.code == "RATE_LIMITED":
        return GatewayUnavailableError(
            "Too many requests right now.", code=refused.code, retry_after=refused.retry_after
        )
    if refused.code == "BAD_REQUEST":
        return GatewayBadRequestError(refused.message or "Bad request", code=refused.code)
    if refused.retryable:
        return GatewayUnavailableError(
            refused.message or "Unavailable", code=refused.code, retry_after=refused.retry_after
        )
    return GatewayError(refused.message or "GraphQL error", code=refused.code)


@contextmanager
def _gateway_errors() -> Iterator[None]:
    """Anything but an answer with data, as the GatewayError the shop answers the browser with."""
    try:
        yield
    except GraphQLTransportError as exc:
        raise _transport_error(exc) from exc
    except GraphQLErrorAnswer as exc:
        raise _answer_error(exc) from None


class GatewayClient:
    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self._http = http
        self._url = url
        self._client = ShopGraphQLClient(url, http)

    async def ready(self) -> bool:
        """Whether the gateway answers its /healthz (for this app's /readyz)."""
        return await gateway_ready(self._http, self._url)

    async def products(self, first: int, after: str | None, *, request_id: str | None = None) -> ProductPage:
        with _gateway_errors():
            return await self._client.products(first, after, request_id=request_id)

    async def product(self, product_id: str, *, request_id: str | None = None) -> Product | None:
        with _gateway_errors():
            return await self._client.product(product_id, request_id=request_id)

    async def products_by_id(
        self, product_ids: list[str], *, request_id: str | None = None
    ) -> dict[str, Product]:
        """The products that exist among ``product_ids`` (missing ones are simply absent): one productsByIds
        for a whole cart."""
        found: dict[str, Product] = {}
        for start in range(0, len(product_ids), PRODUCTS_BY_IDS_MAX):
            chunk = product_ids[start : start + PRODUCTS_BY_IDS_MAX]
            with _gateway_errors():
                answers = await self._client.products_by_ids(chunk, request_id=request_id)
            found.update((product.id, product) for product in answers if product is not None)
        return found

    async def order(self, order_id: str, access_token: str, *, request_id: str | None = None) -> Order | None:
        """The order, if ``access_token`` is its own; None otherwise, exactly as for an order that does not
        exist."""
        with _gateway_errors():
            return await self._client.order(order_id, access_token, request_id=request_id)

    async def place_order(
        self,
        lines: list[tuple[str, int]],
        idempotency_key: str,
        customer: dict[str, Any],
        *,
        request_id: str | None = None,
    ) -> PlaceOrderResult:
        order = PlaceOrderInput(
            items=[OrderLineInput(product_id=pid, qty=qty) for pid, qty in lines],
            idempotency_key=idempotency_key,
            customer=CustomerInput.model_validate(customer),
        )
        with _gateway_errors():
            return await self._client.place_order(order, request_id=request_id)

    async def authorize_payment(
        self, order_id: str, access_token: str, card_number: str, *, request_id: str | None = None
    ) -> OrderResult:
        """Asks for the order's total to be authorized on the card. A decline is an answer: the order
        (PAYMENT_FAILED) with a PAYMENT_DECLINED error."""
        payment = AuthorizePaymentInput(order_id=order_id, access_token=access_token, card_number=card_number)
        with _gateway_errors():
            return await self._client.authorize_payment(payment, request_id=request_id)

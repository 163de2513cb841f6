# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with arguments are typed as returning Any, so every resolver would be flagged.)
"""Mutations: each answers a payload whose ``errors`` carry the domain outcome (empty on success)."""

import re
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

import strawberry
import structlog

from gateway.clients.base import UpstreamError
from gateway.clients.orders import OrderRecord
from gateway.context import Context
from gateway.errors import UPSTREAM_CODES, ErrorCode, UserError, invalid_input, no_such
from gateway.ids import parse_id
from gateway.permissions import Requires
from gateway.scopes import Scope
from gateway.types.customer import CustomerInput
from gateway.types.order import (
    AuthorizePaymentInput,
    Order,
    OrderPayload,
    OrderStatus,
    PlaceOrderInput,
    PlaceOrderPayload,
    RefundPaymentInput,
)
from gateway.types.product import (
    AdjustStockInput,
    CreateProductInput,
    Product,
    ProductPayload,
    UpdateProductInput,
)
from servicekit.rules import (
    MAX_EMAIL,
    MAX_IDEMPOTENCY_KEY,
    MAX_LINES,
    MAX_QTY_PER_LINE,
    MAX_REFUND_REASON,
    MAX_TEXT,
    is_idempotency_key,
)

log = structlog.get_logger()

T = TypeVar("T")

MAX_CARD_NUMBER = 40  # 19 digits with a separator between each: anything longer is not a card number
# Shape only, for a message next to the field; orders validates the address for real.
EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def _field_path(field: str | None, prefix: str = "input") -> str | None:
    """Upstream's snake_case field path (``items.0.product_id``) in the schema's camelCase, under ``prefix``
    (``""``: a mutation whose arguments are the fields themselves)."""
    if not field:
        return None
    return ".".join([*([prefix] if prefix else []), *(_camel(part) for part in field.split("."))])


_NOT_FOUND_MESSAGES = {
    "order_not_found": "There is no such order.",
    "product_not_found": "There is no such product.",
    "webhook_endpoint_not_found": "There is no such webhook endpoint.",
    "webhook_delivery_not_found": "There is no such webhook delivery.",
}
# Refusals about one input field name it (under the mutation's prefix).
_FIELDS = {
    ErrorCode.INVALID_CARD: "cardNumber",
    ErrorCode.REFUND_EXCEEDS_CAPTURED: "amountCents",
    ErrorCode.IDEMPOTENCY_KEY_REUSED: "idempotencyKey",
    ErrorCode.IDEMPOTENCY_KEY_IN_USE: "idempotencyKey",
    ErrorCode.WEBHOOK_URL_NOT_ALLOWED: "url",
}


def user_errors(exc: UpstreamError, *, prefix: str = "input", id_field: str | None = None) -> list[UserError]:
    """Map an upstream refusal to payload errors; raise it again (masked INTERNAL) if it is not known.

    ``prefix`` is where the mutation's input sits (``input``), ``id_field`` the argument naming the thing
    acted on (``orderId``): a NOT_FOUND names it."""
    code = UPSTREAM_CODES.get(exc.code)
    if code is None or (exc.status >= 500 and code is not ErrorCode.PAYMENT_UNAVAILABLE):
        raise exc
    problem = exc.problem
    mapped = _detailed(code, problem, prefix)
    if mapped:
        return mapped
    if code is ErrorCode.INSUFFICIENT_STOCK:
        return [
            UserError(
                code=code,
                message="Not enough stock for this change.",
                available=_as_int(problem.get("available")),
            )
        ]
    if code is ErrorCode.INVALID_INPUT:
        return [UserError(code=code, message="The input is not valid.")]
    if code is ErrorCode.NOT_FOUND:
        return [
            UserError(
                code=code, field=id_field, message=_NOT_FOUND_MESSAGES.get(exc.code, "It does not exist.")
            )
        ]
    if code is ErrorCode.REFUND_EXCEEDS_CAPTURED and _as_int(problem.get("refundable_cents")) is not None:
        refundable = _as_int(problem.get("refundable_cents"))
        return [
            UserError(
                code=code,
                field=f"{prefix}.amountCents",
                message=f"At most {refundable} cents can still be refunded.",
                available=refundable,
            )
        ]
    named = _FIELDS.get(code)
    return [
        UserError(
            code=code,
            field=_field_path(named, prefix),
            message=_MESSAGES.get(code, "The request was refused."),
        )
    ]


def _detailed(code: ErrorCode, problem: dict[str, Any], prefix: str) -> list[UserError]:
    """One error per item a problem lists (short products, unknown ids, invalid fields), or [] when it lists
    none in a shape we read: the caller then answers one general error of the same code, never none (a
    refusal with no error would read as a success with nothing in it)."""
    if code is ErrorCode.INSUFFICIENT_STOCK and isinstance(problem.get("items"), list):
        return [
            UserError(
                code=code,
                field="items",
                message=f"Only {item.get('available')} of product {item.get('product_id')} left; "
                f"{item.get('requested')} requested.",
                product_id=strawberry.ID(str(item.get("product_id"))),
                requested=_as_int(item.get("requested")),
                available=_as_int(item.get("available")),
            )
            for item in problem["items"]
            if isinstance(item, dict)
        ]
    if code is ErrorCode.UNKNOWN_PRODUCT and isinstance(problem.get("product_ids"), list):
        return [
            UserError(
                code=code,
                field="items",
                message=f"There is no product {pid}.",
                product_id=strawberry.ID(str(pid)),
            )
            for pid in problem["product_ids"]
        ]
    if code is ErrorCode.INVALID_INPUT and isinstance(problem.get("errors"), list):
        return [
            UserError(
                code=code,
                field=_field_path(str(err.get("field") or "") or None, prefix),
                message=str(err.get("message") or "invalid")[:300],
            )
            for err in problem["errors"]
            if isinstance(err, dict)
        ]
    return []


_MESSAGES = {
    ErrorCode.ORDER_NOT_CANCELLABLE: "The order cannot be cancelled in its current state.",
    ErrorCode.ORDER_NOT_CAPTURABLE: "The order cannot be captured in its current state.",
    ErrorCode.ORDER_EXPIRED: "The reservation has expired; place the order again.",
    ErrorCode.ORDER_NOT_AUTHORIZABLE: "The order can no longer be paid for: it is cancelled, expired or "
    "refunded.",
    ErrorCode.ORDER_NOT_AUTHORIZED: "The order has no authorized payment to capture yet.",
    ErrorCode.ORDER_NOT_REFUNDABLE: "Only a paid order can be refunded.",
    ErrorCode.REFUND_EXCEEDS_CAPTURED: "The refunds would exceed what was captured.",
    ErrorCode.INVALID_CARD: "That is not a valid card number: check the digits.",
    ErrorCode.AUTHORIZATION_EXPIRED: "The card authorization has lapsed and can no longer be captured.",
    ErrorCode.PAYMENT_UNAVAILABLE: "Payments is unavailable right now; retry shortly.",
    ErrorCode.IDEMPOTENCY_KEY_REUSED: "This idempotency key was already used for a different request.",
    ErrorCode.IDEMPOTENCY_KEY_IN_USE: "A request with this idempotency key is still in progress; retry "
    "shortly.",
    ErrorCode.INVALID_QUANTITY: f"Each quantity must be between 1 and {MAX_QTY_PER_LINE}.",
    ErrorCode.UNKNOWN_PRODUCT: "An item names a product that does not exist.",
    ErrorCode.INVALID_INPUT: "The input is not valid.",
    ErrorCode.WEBHOOK_URL_NOT_ALLOWED: "That URL cannot receive webhooks: use http:// or https:// with a "
    "public host (private and loopback addresses are refused unless the worker allows them).",
    ErrorCode.WEBHOOK_ENDPOINT_DELETED: "That delivery's endpoint was deleted: there is nowhere to send it.",
}


async def upstream(
    call: Awaitable[T], *, prefix: str = "input", id_field: str | None = None
) -> tuple[T | None, list[UserError]]:
    """The one place an upstream refusal becomes payload errors: ``(answer, [])`` or ``(None, errors)``.
    Refusals the schema has no code for, and upstream failures, propagate (masked as INTERNAL)."""
    try:
        return await call, []
    except UpstreamError as exc:
        return None, user_errors(exc, prefix=prefix, id_field=id_field)


def _as_int(value: Any) -> int | None:
    return (
        value
        if isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31
        else None
    )


def _given(value: str | None) -> str | None:
    """An optional string argument: None when absent (UNSET) or null."""
    return value if isinstance(value, str) else None


def _check_idempotency_key(key: str | None, field: str, errors: list[UserError]) -> None:
    if key is not None and not is_idempotency_key(key):
        errors.append(
            invalid_input(
                field, f"An idempotency key is 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters."
            )
        )


def _check_customer(customer: CustomerInput, errors: list[UserError]) -> dict[str, Any]:
    """The customer as orders takes it, trimmed; a field-level error for each field a shopper got wrong."""
    address = customer.address
    fields = {  # schema path: (orders' name, value, required, what to say when it is missing)
        "input.customer.email": ("email", customer.email, True, ""),
        "input.customer.name": ("name", customer.name, True, "Enter the name the order is for."),
        "input.customer.address.line1": ("line1", address.line1, True, "Enter the street address."),
        "input.customer.address.line2": ("line2", _given(address.line2) or "", False, ""),
        "input.customer.address.city": ("city", address.city, True, "Enter the town or city."),
        "input.customer.address.postalCode": (
            "postal_code",
            address.postal_code,
            True,
            "Enter the postal code.",
        ),
        "input.customer.address.country": ("country", address.country.upper(), True, ""),
    }
    given: dict[str, str | None] = {}
    for field, (name, raw, required, missing) in fields.items():
        value = raw.strip()
        given[name] = value or None
        if not value.isprintable():  # a NUL or a line break has no place on a label (PostgreSQL refuses NUL)
            errors.append(invalid_input(field, "Use printable characters only."))
        elif name == "email":
            if len(value) > MAX_EMAIL or not EMAIL_SHAPE.fullmatch(value):
                errors.append(invalid_input(field, "Enter an email address like name@example.com."))
        elif name == "country":
            if not (len(value) == 2 and value.isascii() and value.isalpha()):
                errors.append(invalid_input(field, "Use the two-letter country code, e.g. GB or FR."))
        elif required and not value:
            errors.append(invalid_input(field, missing))
        elif len(value) > MAX_TEXT:
            errors.append(invalid_input(field, f"At most {MAX_TEXT} characters."))
    return {
        "email": given["email"],
        "name": given["name"],
        "address": {name: given[name] for name in ("line1", "line2", "city", "postal_code", "country")},
    }


def _check_order_input(
    order: PlaceOrderInput,
) -> tuple[list[tuple[int, int]], dict[str, Any] | None, list[UserError]]:
    errors: list[UserError] = []
    lines: list[tuple[int, int]] = []
    if not 1 <= len(order.items) <= MAX_LINES:
        errors.append(invalid_input("input.items", f"An order has 1 to {MAX_LINES} items."))
    for index, line in enumerate(order.items[:MAX_LINES]):
        product_id = parse_id(line.product_id)
        if product_id is None:
            errors.append(invalid_input(f"input.items.{index}.productId", "Not a product id."))
            continue
        if not 1 <= line.qty <= MAX_QTY_PER_LINE:
            errors.append(
                UserError(
                    code=ErrorCode.INVALID_QUANTITY,
                    field=f"input.items.{index}.qty",
                    message=f"Quantity must be between 1 and {MAX_QTY_PER_LINE}; got {line.qty}.",
                    product_id=strawberry.ID(str(product_id)),
                    requested=line.qty,
                )
            )
            continue
        lines.append((product_id, line.qty))
    _check_idempotency_key(_given(order.idempotency_key), "input.idempotencyKey", errors)
    customer = _check_customer(order.customer, errors) if isinstance(order.customer, CustomerInput) else None
    return lines, customer, errors


def _no_such_order(field: str) -> list[UserError]:
    """What a missing order, an id that cannot be one and a wrong access token all answer, word for word:
    a caller without the order's token learns nothing about whether it exists."""
    return [UserError(code=ErrorCode.NOT_FOUND, field=field, message=_NOT_FOUND_MESSAGES["order_not_found"])]


def _no_such_product(field: str) -> ProductPayload:
    return ProductPayload(
        product=None,
        errors=no_such(field, "product"),
    )


def _declined(failure_code: str | None) -> list[UserError]:
    reason = failure_code or "declined"
    return [
        UserError(
            code=ErrorCode.PAYMENT_DECLINED,
            field="input.cardNumber",
            message=f"The payment was declined: {reason}. Try another card.",
        )
    ]


async def _order_action(call: Awaitable[OrderRecord], *, prefix: str, id_field: str) -> OrderPayload:
    # orders' 404 maps to the very error _no_such_order gives (same code, field and message).
    record, errors = await upstream(call, prefix=prefix, id_field=id_field)
    return OrderPayload(order=Order.from_record(record) if record else None, errors=errors)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Place an order: its stock is reserved until order.expiresAt. Pass idempotencyKey so a "
        "retried submit makes one order; keep accessToken, which authorizePayment and order() need."
    )
    async def place_order(
        self,
        info: strawberry.Info[Context, None],
        data: Annotated[PlaceOrderInput, strawberry.argument(name="input")],
    ) -> PlaceOrderPayload:
        context = info.context
        await context.limits.hit(context.limits.place_order, "place-order", context.client_address)
        lines, customer, errors = _check_order_input(data)
        if errors:
            return PlaceOrderPayload(order=None, errors=errors)
        placed, errors = await upstream(
            context.orders.place_order(lines, idempotency_key=_given(data.idempotency_key), customer=customer)
        )
        if placed is None:
            return PlaceOrderPayload(order=None, errors=errors)
        if Order.answered_by_placing(info.selected_fields):
            # What the client asked for is in orders' answer to the POST: no read-back.
            order = Order.from_placed(placed)
        else:
            record = await context.orders.get_order(placed.orderId)
            if record is None:
                raise LookupError(f"order {placed.orderId} was placed but cannot be read back")
            order = Order.from_record(record)
        return PlaceOrderPayload(
            order=order, access_token=context.order_tokens.issue(placed.orderId), errors=[]
        )

    @strawberry.mutation(
        description="Authorize the order's total on a card (captured when the order ships). Needs the "
        "order's accessToken. Declined: the order (PAYMENT_FAILED) + PAYMENT_DECLINED; try another card."
    )
    async def authorize_payment(
        self,
        info: strawberry.Info[Context, None],
        data: Annotated[AuthorizePaymentInput, strawberry.argument(name="input")],
    ) -> OrderPayload:
        context = info.context
        await context.limits.hit(
            context.limits.authorize_payment, "authorize-payment", context.client_address
        )
        order_id = parse_id(data.order_id)
        if order_id is None or not context.order_tokens.verify(order_id, data.access_token):
            return OrderPayload(order=None, errors=_no_such_order("input.orderId"))
        if len(data.card_number) > MAX_CARD_NUMBER:
            return OrderPayload(
                order=None,
                errors=[
                    UserError(
                        code=ErrorCode.INVALID_CARD,
                        field="input.cardNumber",
                        message=_MESSAGES[ErrorCode.INVALID_CARD],
                    )
                ],
            )
        payload = await _order_action(
            context.orders.authorize(order_id, data.card_number), prefix="input", id_field="input.orderId"
        )
        # A decline is an answer, not a failure: the order (PAYMENT_FAILED, still reserved) and why.
        if payload.order is not None and payload.order.status is OrderStatus.PAYMENT_FAILED:
            payload.errors = _declined(payload.order.payment_failure_code)
        return payload

    @strawberry.mutation(
        permission_classes=[Requires[Scope.ORDERS_WRITE]],
        description="Admin. Capture the authorized total: the order becomes PAID.",
    )
    async def capture_payment(
        self, info: strawberry.Info[Context, None], order_id: strawberry.ID
    ) -> OrderPayload:
        parsed = parse_id(order_id)
        if parsed is None:
            return OrderPayload(order=None, errors=_no_such_order("orderId"))
        return await _order_action(info.context.orders.capture(parsed), prefix="orderId", id_field="orderId")

    @strawberry.mutation(
        permission_classes=[Requires[Scope.ORDERS_WRITE]],
        description="Admin. Cancel the order; its stock comes back, an authorization is voided and captured "
        "money refunded in full.",
    )
    async def cancel_order(
        self, info: strawberry.Info[Context, None], order_id: strawberry.ID
    ) -> OrderPayload:
        parsed = parse_id(order_id)
        if parsed is None:
            return OrderPayload(order=None, errors=_no_such_order("orderId"))
        return await _order_action(info.context.orders.cancel(parsed), prefix="orderId", id_field="orderId")

    @strawberry.mutation(
        permission_classes=[Requires[Scope.ORDERS_WRITE]],
        description="Admin. Refund part or all of a paid order (refunding the rest makes it REFUNDED; stock "
        "does not come back). idempotencyKey makes a retried refund refund once.",
    )
    async def refund_payment(
        self,
        info: strawberry.Info[Context, None],
        data: Annotated[RefundPaymentInput, strawberry.argument(name="input")],
    ) -> OrderPayload:
        order_id = parse_id(data.order_id)
        if order_id is None:
            return OrderPayload(order=None, errors=_no_such_order("input.orderId"))
        errors: list[UserError] = []
        if data.amount_cents < 1:
            errors.append(invalid_input("input.amountCents", "A refund is at least 1 cent."))
        reason = (_given(data.reason) or "").strip() or None
        if reason is not None and len(reason) > MAX_REFUND_REASON:
            errors.append(invalid_input("input.reason", f"At most {MAX_REFUND_REASON} characters."))
        _check_idempotency_key(data.idempotency_key, "input.idempotencyKey", errors)
        if errors:
            return OrderPayload(order=None, errors=errors)
        call = info.context.orders.refund(
            order_id, amount_cents=data.amount_cents, reason=reason, idempotency_key=data.idempotency_key
        )
        return await _order_action(call, prefix="input", id_field="input.orderId")

    @strawberry.mutation(permission_classes=[Requires[Scope.CATALOG_WRITE]], description="Admin.")
    async def create_product(
        self,
        info: strawberry.Info[Context, None],
        data: Annotated[CreateProductInput, strawberry.argument(name="input")],
    ) -> ProductPayload:
        record, errors = await upstream(
            info.context.inventory.create_product(
                name=data.name, price_cents=data.price_cents, stock_qty=data.stock_qty
            )
        )
        return ProductPayload(product=Product.from_record(record) if record else None, errors=errors)

    @strawberry.mutation(
        permission_classes=[Requires[Scope.CATALOG_WRITE]], description="Admin. Only the fields given change."
    )
    async def update_product(
        self,
        info: strawberry.Info[Context, None],
        data: Annotated[UpdateProductInput, strawberry.argument(name="input")],
    ) -> ProductPayload:
        product_id = parse_id(data.id)
        if product_id is None:
            return _no_such_product("input.id")
        changes: dict[str, object] = {}
        if data.name is not None and data.name is not strawberry.UNSET:
            changes["name"] = data.name
        if data.price_cents is not None and data.price_cents is not strawberry.UNSET:
            changes["price_cents"] = data.price_cents
        if data.low_stock_threshold is not strawberry.UNSET:  # null is given: it removes the threshold
            changes["low_stock_threshold"] = data.low_stock_threshold
        record, errors = await upstream(
            info.context.inventory.update_product(product_id, changes), id_field="input.id"
        )
        return ProductPayload(product=Product.from_record(record) if record else None, errors=errors)

    @strawberry.mutation(
        permission_classes=[Requires[Scope.CATALOG_WRITE]], description="Admin. Exactly one of setTo / delta."
    )
    async def adjust_stock(
        self,
        info: strawberry.Info[Context, None],
        data: Annotated[AdjustStockInput, strawberry.argument(name="input")],
    ) -> ProductPayload:
        product_id = parse_id(data.product_id)
        if product_id is None:
            return _no_such_product("input.productId")
        given = {
            name: value
            for name, value in (("stock_qty", data.set_to), ("delta", data.delta))
            if value is not None and value is not strawberry.UNSET
        }
        if len(given) != 1:
            return ProductPayload(
                product=None, errors=[invalid_input("input", "Give exactly one of setTo or delta.")]
            )
        record, errors = await upstream(
            info.context.inventory.adjust_stock(product_id, given), id_field="input.productId"
        )
        for error in errors:
            if error.code is ErrorCode.INSUFFICIENT_STOCK:
                error.product_id = strawberry.ID(str(product_id))
                error.field = "input.delta"
        return ProductPayload(product=Product.from_record(record) if record else None, errors=errors)

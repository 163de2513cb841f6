# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with arguments are typed as returning Any, so every resolver would be flagged.)
"""Mutations: each answers a payload whose ``errors`` carry the domain outcome (empty on success)."""

from typing import Annotated, Any

import strawberry
import structlog

from gateway.auth import MAX_USERNAME, authenticate
from gateway.clients.base import UpstreamError
from gateway.clients.orders import OrderRecord
from gateway.context import Context
from gateway.errors import UPSTREAM_CODES, ErrorCode, UserError
from gateway.ids import parse_id
from gateway.permissions import IsAdmin
from gateway.types.login import LoginPayload
from gateway.types.order import Order, OrderPayload, PlaceOrderInput, PlaceOrderPayload
from gateway.types.product import (
    AdjustStockInput,
    CreateProductInput,
    Product,
    ProductPayload,
    UpdateProductInput,
)

log = structlog.get_logger()

MAX_QTY_PER_LINE = 1_000
MAX_LINES = 100
MAX_IDEMPOTENCY_KEY = 255


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def _field_path(field: str | None, prefix: str = "input") -> str | None:
    """Upstream's snake_case field path (``items.0.product_id``) in the schema's camelCase."""
    if not field:
        return None
    return ".".join([prefix, *(_camel(part) for part in field.split("."))])


def user_errors(exc: UpstreamError, *, prefix: str = "input") -> list[UserError]:
    """Map an upstream refusal to payload errors; raise it again (masked INTERNAL) if it is not known."""
    code = UPSTREAM_CODES.get(exc.code)
    if code is None or (exc.status >= 500 and code is not ErrorCode.PAYMENT_UNAVAILABLE):
        raise exc
    problem = exc.problem
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
    if code is ErrorCode.INSUFFICIENT_STOCK:
        return [
            UserError(
                code=code,
                message="Not enough stock for this change.",
                available=_as_int(problem.get("available")),
            )
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
        ] or [UserError(code=code, message="The input is not valid.")]
    return [UserError(code=code, message=_MESSAGES.get(code, "The request was refused."))]


_MESSAGES = {
    ErrorCode.NOT_FOUND: "It does not exist.",
    ErrorCode.ORDER_NOT_CANCELLABLE: "The order cannot be cancelled in its current state.",
    ErrorCode.ORDER_NOT_CAPTURABLE: "The order cannot be captured in its current state.",
    ErrorCode.PAYMENT_UNAVAILABLE: "Payments is unavailable; the order is unchanged. Retry the capture.",
    ErrorCode.IDEMPOTENCY_KEY_REUSED: "This idempotency key was used with a different order.",
    ErrorCode.IDEMPOTENCY_KEY_IN_USE: "An order with this key is still being placed; retry shortly.",
    ErrorCode.INVALID_QUANTITY: f"Each quantity must be between 1 and {MAX_QTY_PER_LINE}.",
    ErrorCode.UNKNOWN_PRODUCT: "An item names a product that does not exist.",
    ErrorCode.INVALID_INPUT: "The input is not valid.",
}


def _as_int(value: Any) -> int | None:
    return (
        value
        if isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31
        else None
    )


def _invalid(field: str, message: str) -> UserError:
    return UserError(code=ErrorCode.INVALID_INPUT, field=field, message=message)


def _check_order_input(order: PlaceOrderInput) -> tuple[list[tuple[int, int]], list[UserError]]:
    errors: list[UserError] = []
    lines: list[tuple[int, int]] = []
    if not 1 <= len(order.items) <= MAX_LINES:
        errors.append(_invalid("input.items", f"An order has 1 to {MAX_LINES} items."))
    for index, line in enumerate(order.items[:MAX_LINES]):
        product_id = parse_id(line.product_id)
        if product_id is None:
            errors.append(_invalid(f"input.items.{index}.productId", "Not a product id."))
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
    key = order.idempotency_key if isinstance(order.idempotency_key, str) else None
    if key is not None and not (1 <= len(key) <= MAX_IDEMPOTENCY_KEY and key.isprintable() and key.isascii()):
        errors.append(
            _invalid(
                "input.idempotencyKey",
                f"An idempotency key is 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters.",
            )
        )
    return lines, errors


def _order_id_or_error(raw: str) -> tuple[int | None, list[UserError]]:
    order_id = parse_id(raw)
    if order_id is None:
        return None, [
            UserError(code=ErrorCode.NOT_FOUND, field="orderId", message=f"There is no order {raw[:40]!r}.")
        ]
    return order_id, []


def _no_such_product(field: str) -> ProductPayload:
    return ProductPayload(
        product=None,
        errors=[UserError(code=ErrorCode.NOT_FOUND, field=field, message="There is no such product.")],
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Place an order. Pass idempotencyKey so a retried submit makes one order."
    )
    async def place_order(
        self,
        info: strawberry.Info[Context, None],
        data: Annotated[PlaceOrderInput, strawberry.argument(name="input")],
    ) -> PlaceOrderPayload:
        context = info.context
        await context.limits.hit(context.limits.place_order, "place-order", context.client_address)
        lines, errors = _check_order_input(data)
        if errors:
            return PlaceOrderPayload(order=None, errors=errors)
        try:
            key = data.idempotency_key if isinstance(data.idempotency_key, str) else None
            placed = await context.orders.place_order(lines, idempotency_key=key)
        except UpstreamError as exc:
            return PlaceOrderPayload(order=None, errors=user_errors(exc))
        record = await context.orders.get_order(placed.orderId)
        if record is None:
            raise LookupError(f"order {placed.orderId} was placed but cannot be read back")
        log.info("order_placed", order_id=placed.orderId, total_cents=placed.total_cents)
        return PlaceOrderPayload(order=Order.from_record(record), errors=[])

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Admin. Charge the order. Declined: the order (PAYMENT_FAILED) + PAYMENT_DECLINED.",
    )
    async def capture_payment(
        self, info: strawberry.Info[Context, None], order_id: strawberry.ID
    ) -> OrderPayload:
        parsed, errors = _order_id_or_error(order_id)
        if parsed is None:
            return OrderPayload(order=None, errors=errors)
        try:
            record: OrderRecord = await info.context.orders.capture(parsed)
        except UpstreamError as exc:
            return OrderPayload(order=None, errors=user_errors(exc, prefix="orderId"))
        if record.status == "PAYMENT_FAILED":
            reason = record.payment_failure_code or "declined"
            errors = [
                UserError(code=ErrorCode.PAYMENT_DECLINED, message=f"The payment was declined: {reason}.")
            ]
        return OrderPayload(order=Order.from_record(record), errors=errors)

    @strawberry.mutation(
        permission_classes=[IsAdmin], description="Admin. Cancel the order; its stock comes back."
    )
    async def cancel_order(
        self, info: strawberry.Info[Context, None], order_id: strawberry.ID
    ) -> OrderPayload:
        parsed, errors = _order_id_or_error(order_id)
        if parsed is None:
            return OrderPayload(order=None, errors=errors)
        try:
            record = await info.context.orders.cancel(parsed)
        except UpstreamError as exc:
            return OrderPayload(order=None, errors=user_errors(exc, prefix="orderId"))
        return OrderPayload(order=Order.from_record(record), errors=[])

    @strawberry.mutation(permission_classes=[IsAdmin], description="Admin.")
    async def create_product(
        self,
        info: strawberry.Info[Context, None],
        data: Annotated[CreateProductInput, strawberry.argument(name="input")],
    ) -> ProductPayload:
        try:
            record = await info.context.inventory.create_product(
                name=data.name, price_cents=data.price_cents, stock_qty=data.stock_qty
            )
        except UpstreamError as exc:
            return ProductPayload(product=None, errors=user_errors(exc))
        return ProductPayload(product=Product.from_record(record), errors=[])

    @strawberry.mutation(permission_classes=[IsAdmin], description="Admin. Only the fields given change.")
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
        try:
            record = await info.context.inventory.update_product(product_id, changes)
        except UpstreamError as exc:
            return ProductPayload(product=None, errors=user_errors(exc))
        return ProductPayload(product=Product.from_record(record), errors=[])

    @strawberry.mutation(permission_classes=[IsAdmin], description="Admin. Exactly one of setTo / delta.")
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
                product=None, errors=[_invalid("input", "Give exactly one of setTo or delta.")]
            )
        try:
            record = await info.context.inventory.adjust_stock(product_id, given)
        except UpstreamError as exc:
            errors = user_errors(exc)
            for error in errors:
                if error.code is ErrorCode.INSUFFICIENT_STOCK:
                    error.product_id = strawberry.ID(str(product_id))
                    error.field = "input.delta"
            return ProductPayload(product=None, errors=errors)
        return ProductPayload(product=Product.from_record(record), errors=[])

    @strawberry.mutation(description="Sign in; the token goes in 'Authorization: Bearer …'.")
    async def login(self, info: strawberry.Info[Context, None], username: str, password: str) -> LoginPayload:
        context = info.context
        limits = context.limits
        client = context.client_address
        await limits.hit(limits.login, "login", client)
        name = username[: MAX_USERNAME + 1]  # longer ones are wrong anyway; keep keys and logs small
        await limits.check_login_allowed(name, client)
        principal = await authenticate(context.engine, name, password)
        if principal is None:
            await limits.record_login_failure(name, client)
            log.info("login_failed", username=name, client=client)
            return LoginPayload(
                errors=[UserError(code=ErrorCode.INVALID_CREDENTIALS, message="Wrong username or password.")]
            )
        token, expires_at = context.tokens.issue(principal)
        log.info("login_succeeded", username=principal.username, role=principal.role)
        return LoginPayload(token=token, expires_at=expires_at, errors=[])

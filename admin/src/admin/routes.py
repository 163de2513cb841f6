"""The admin's pages. Every page but sign-in needs a session (`AdminDep`); every form is CSRF-checked
(`checked_form`); every POST answers with a redirect (POST-redirect-GET) or the form again with its errors."""

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from admin.gateway import (
    AdminGateway,
    GatewayError,
    Order,
    OrderResult,
    RateLimitedError,
    RefusedError,
    UserError,
    refundable_cents,
)
from admin.money import (
    FieldError,
    format_cents,
    parse_int,
    parse_name,
    parse_price,
    parse_reason,
    parse_refund_amount,
)
from admin.session import (
    admin_token,
    checked_form,
    csrf_token,
    flash,
    sign_in,
    sign_out,
    signed_in_user,
    take_flashes,
)
from admin.timeline import payment_timeline
from servicekit.rules import MAX_STOCK, ORDER_STATUSES

log = structlog.get_logger()

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")  # Starlette's Jinja2Templates autoescapes
templates.env.filters["money"] = format_cents
templates.env.filters["humanize"] = lambda code: (code or "").replace("_", " ").capitalize()

router = APIRouter()

_ID = re.compile(r"[0-9]{1,18}")


def render(
    request: Request, template: str, context: Mapping[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    page = {
        "csrf_token": csrf_token(request),
        "user": signed_in_user(request),
        "flashes": take_flashes(request),
        "request_id": getattr(request.state, "request_id", None),
        **(context or {}),
    }
    # The security headers (on redirects and error pages too): uikit.headers.SecurityHeaders, in create_app.
    return templates.TemplateResponse(request, template, page, status_code=status_code)


def not_found(request: Request, what: str) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"title": f"{what} not found", "message": f"There is no such {what.lower()}."},
        status_code=404,
    )


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def signed_in_gateway(request: Request) -> AdminGateway:
    return AdminGateway(
        request.app.state.gateway, token=admin_token(request), request_id=request.state.request_id
    )


def anonymous_gateway(request: Request) -> AdminGateway:
    return AdminGateway(request.app.state.gateway, token=None, request_id=request.state.request_id)


AdminDep = Annotated[AdminGateway, Depends(signed_in_gateway)]
AnonymousDep = Annotated[AdminGateway, Depends(anonymous_gateway)]


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never //host or a scheme): no open redirect through ?next=."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/products"


def _after(value: str | None) -> str | None:
    return value if value and len(value) <= 200 else None


# The gateway's `field` names (maybe with an "input." prefix) mapped onto this admin's form fields.
_FIELD_NAMES = {
    "name": "name",
    "pricecents": "price",
    "price_cents": "price",
    "stockqty": "stock",
    "stock_qty": "stock",
    "setto": "quantity",
    "delta": "quantity",
    "lowstockthreshold": "threshold",
    "low_stock_threshold": "threshold",
    "amountcents": "amount",
    "amount_cents": "amount",
    "reason": "reason",
    "url": "url",
    "eventtypes": "event_types",
    "event_types": "event_types",
    "description": "description",
    "scopes": "scopes",
    "newpassword": "new",
    "currentpassword": "current",
}


def _place_errors(errors: Sequence[UserError], known: set[str]) -> tuple[dict[str, str], list[str]]:
    """Split the gateway's errors into per-field messages and page-level ones."""
    by_field: dict[str, str] = {}
    general: list[str] = []
    for error in errors:
        key = (error.field or "").rsplit(".", 1)[-1].lower()
        field = _FIELD_NAMES.get(key)
        if field in known and field not in by_field:
            by_field[field] = error.message
        elif error.code == "INSUFFICIENT_STOCK" and "quantity" in known:
            by_field["quantity"] = error.message
        elif error.code == "REFUND_EXCEEDS_CAPTURED" and "amount" in known:
            by_field["amount"] = error.message
        else:
            general.append(error.message)
    return by_field, general


# --- Sign in and out ---------------------------------------------------------------------------------------


@router.get("/", include_in_schema=False)
async def home() -> RedirectResponse:
    return redirect("/products")


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(
    request: Request, next_url: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    if signed_in_user(request):
        return redirect(_safe_next(next_url))
    return render(request, "sign_in.html", {"next": _safe_next(next_url), "username": "", "errors": {}})


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in_submit(request: Request, gateway: AnonymousDep) -> Response:
    form = await checked_form(request)
    username, password = _text(form, "username").strip(), _text(form, "password")
    target = _safe_next(_text(form, "next"))
    errors: dict[str, str] = {}
    if not username:
        errors["username"] = "Enter your username."
    if not password:
        errors["password"] = "Enter your password."
    context: dict[str, Any] = {"next": target, "username": username, "errors": errors}
    if errors:
        return render(request, "sign_in.html", context, status_code=422)
    try:
        result = await gateway.login(username, password)
    except RateLimitedError as exc:
        wait = f" in {exc.retry_after} seconds" if exc.retry_after else " in a little while"
        context["problem"] = f"Too many sign-in attempts. Please try again{wait}."
        return render(request, "sign_in.html", context, status_code=429)
    if result.token is None:
        codes = {error.code for error in result.errors}
        if "INVALID_CREDENTIALS" in codes:
            context["problem"] = "The username or password is not right."
        else:
            context["problem"] = "; ".join(e.message for e in result.errors) or "Sign-in failed."
        return render(request, "sign_in.html", context, status_code=401)
    sign_in(request, token=result.token, username=username)
    return redirect(target)


@router.post("/sign-out")
async def sign_out_submit(request: Request) -> Response:
    await checked_form(request)
    token = request.session.get("token")
    if isinstance(token, str) and token:
        # Ended at the gateway first, so a copy of the cookie is worth nothing either. This session ends here
        # whatever the gateway says: an ended token, or a gateway that is down, must not keep anyone in.
        gateway = AdminGateway(request.app.state.gateway, token=token, request_id=request.state.request_id)
        try:
            await gateway.sign_out()
        except (RefusedError, GatewayError) as exc:
            log.warning("sign_out_not_confirmed", error=type(exc).__name__)
    sign_out(request)
    flash(request, "You have signed out.")
    return redirect("/sign-in")


# --- Products ----------------------------------------------------------------------------------------------


@router.get("/products", response_class=HTMLResponse)
async def products_page(request: Request, gateway: AdminDep, after: str | None = None) -> Response:
    page = await gateway.products(first=request.app.state.settings.page_size, after=_after(after))
    return render(request, "products.html", {"page": page, "after": _after(after)})


@router.get("/products/new", response_class=HTMLResponse)
async def new_product_page(request: Request, gateway: AdminDep) -> Response:
    values = {"name": "", "price": "", "stock": "0"}
    return render(request, "product_new.html", {"values": values, "errors": {}, "problems": []})


@router.post("/products/new", response_class=HTMLResponse)
async def new_product_submit(request: Request, gateway: AdminDep) -> Response:
    form = await checked_form(request)
    values = {key: _text(form, key) for key in ("name", "price", "stock")}
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for key, parse in (
        ("name", parse_name),
        ("price", parse_price),
        ("stock", lambda raw: parse_int(raw, minimum=0, maximum=MAX_STOCK)),
    ):
        try:
            parsed[key] = parse(values[key])
        except FieldError as exc:
            errors[key] = exc.message
    problems: list[str] = []
    if not errors:
        result = await gateway.create_product(
            name=parsed["name"], price_cents=parsed["price"], stock_qty=parsed["stock"]
        )
        if result.product is not None and not result.errors:
            flash(request, f"Created “{result.product.name}”.")
            return redirect(f"/products/{result.product.id}")
        errors, problems = _place_errors(result.errors, {"name", "price", "stock"})
    context = {"values": values, "errors": errors, "problems": problems}
    return render(request, "product_new.html", context, status_code=422)


def _edit_context(product: Any, **overrides: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "product": product,
        "values": {
            "name": product.name,
            "price": format_cents(product.price_cents).replace(",", ""),
            "threshold": "" if product.low_stock_threshold is None else str(product.low_stock_threshold),
        },
        "errors": {},
        "problems": [],
        "stock_values": {"mode": "set", "quantity": ""},
        "stock_errors": {},
        "stock_problems": [],
    }
    context.update(overrides)
    return context


@router.get("/products/{product_id}", response_class=HTMLResponse)
async def product_page(request: Request, gateway: AdminDep, product_id: str) -> Response:
    product = await gateway.product(product_id) if _ID.fullmatch(product_id) else None
    if product is None:
        return not_found(request, "Product")
    return render(request, "product_edit.html", _edit_context(product))


@router.post("/products/{product_id}", response_class=HTMLResponse)
async def product_submit(request: Request, gateway: AdminDep, product_id: str) -> Response:
    form = await checked_form(request)
    product = await gateway.product(product_id) if _ID.fullmatch(product_id) else None
    if product is None:
        return not_found(request, "Product")
    values = {key: _text(form, key) for key in ("name", "price", "threshold")}
    errors: dict[str, str] = {}
    name, price = product.name, product.price_cents
    # The threshold: blank means no alert; a form without the field (not this page's) keeps it.
    threshold: dict[str, int | None] = {}
    try:
        name = parse_name(values["name"])
    except FieldError as exc:
        errors["name"] = exc.message
    try:
        price = parse_price(values["price"])
    except FieldError as exc:
        errors["price"] = exc.message
    if "threshold" in form:
        try:
            raw = values["threshold"]
            threshold["low_stock_threshold"] = (
                parse_int(raw, minimum=0, maximum=MAX_STOCK, what="a number of units")
                if raw.strip()
                else None
            )
        except FieldError as exc:
            errors["threshold"] = exc.message
    problems: list[str] = []
    if not errors:
        result = await gateway.update_product(product_id, name=name, price_cents=price, **threshold)
        if result.product is not None and not result.errors:
            flash(request, f"Saved “{result.product.name}”.")
            return redirect(f"/products/{product_id}")
        errors, problems = _place_errors(result.errors, {"name", "price", "threshold"})
    context = _edit_context(product, values=values, errors=errors, problems=problems)
    return render(request, "product_edit.html", context, status_code=422)


@router.post("/products/{product_id}/stock", response_class=HTMLResponse)
async def stock_submit(request: Request, gateway: AdminDep, product_id: str) -> Response:
    form = await checked_form(request)
    product = await gateway.product(product_id) if _ID.fullmatch(product_id) else None
    if product is None:
        return not_found(request, "Product")
    mode = _text(form, "mode")
    values = {"mode": mode, "quantity": _text(form, "quantity")}
    errors: dict[str, str] = {}
    quantity = 0
    if mode not in ("set", "add"):
        errors["mode"] = "Choose whether to set the stock or add to it."
    try:
        if mode == "add":
            quantity = parse_int(values["quantity"], minimum=-MAX_STOCK, maximum=MAX_STOCK)
        else:
            quantity = parse_int(values["quantity"], minimum=0, maximum=MAX_STOCK)
    except FieldError as exc:
        errors["quantity"] = exc.message
    problems: list[str] = []
    if not errors:
        if mode == "set":
            result = await gateway.adjust_stock(product_id, set_to=quantity)
        else:
            result = await gateway.adjust_stock(product_id, delta=quantity)
        if result.product is not None and not result.errors:
            flash(request, f"Stock of “{result.product.name}” is now {result.product.stock_qty:,}.")
            return redirect(f"/products/{product_id}")
        errors, problems = _place_errors(result.errors, {"quantity"})
    context = _edit_context(product, stock_values=values, stock_errors=errors, stock_problems=problems)
    return render(request, "product_edit.html", context, status_code=422)


# --- Orders ------------------------------------------------------------------------------------------------


@router.get("/orders", response_class=HTMLResponse)
async def orders_page(
    request: Request, gateway: AdminDep, status: str | None = None, after: str | None = None
) -> Response:
    if status and status not in ORDER_STATUSES:
        return render(
            request,
            "error.html",
            {"title": "Unknown status", "message": "Choose a status from the list."},
            status_code=400,
        )
    chosen = next((s for s in ORDER_STATUSES if s == status), None)
    page = await gateway.orders(
        status=chosen, first=request.app.state.settings.page_size, after=_after(after)
    )
    context = {"page": page, "status": chosen, "statuses": ORDER_STATUSES, "after": _after(after)}
    return render(request, "orders.html", context)


# What a cancel does to the money, by the state it starts from (the button says so before it is pressed).
CANCELLABLE = frozenset({"PENDING", "PAYMENT_FAILED", "AUTHORIZED", "PAID"})
_IDEMPOTENCY_KEY = re.compile(r"[0-9a-f]{32}")


def _order_context(order: Order, **overrides: Any) -> dict[str, Any]:
    """The order page: its timeline, and the forms that fit its state. The refund form gets a fresh
    idempotency key per rendering, so a double click or a resubmitted form refunds once."""
    context: dict[str, Any] = {
        "order": order,
        "timeline": payment_timeline(order),
        "can_cancel": order.status in CANCELLABLE,
        "refundable_cents": refundable_cents(order),
        "refund_values": {"amount": format_cents(refundable_cents(order)).replace(",", ""), "reason": ""},
        "refund_errors": {},
        "refund_problems": [],
        "refund_key": uuid.uuid4().hex,
    }
    context.update(overrides)
    return context


@router.get("/orders/{order_id}", response_class=HTMLResponse)
async def order_page(request: Request, gateway: AdminDep, order_id: str) -> Response:
    order = await gateway.order(order_id) if _ID.fullmatch(order_id) else None
    if order is None:
        return not_found(request, "Order")
    return render(request, "order.html", _order_context(order))


def _report(request: Request, result: OrderResult, describe: Callable[[Order], str]) -> None:
    if result.errors or result.order is None:
        flash(request, " ".join(error.message for error in result.errors) or "Nothing was changed.", "error")
    else:
        flash(request, describe(result.order))


async def _order_action(
    request: Request,
    order_id: str,
    act: Callable[[str], Awaitable[OrderResult]],
    describe: Callable[[Order], str],
) -> Response:
    await checked_form(request)
    if not _ID.fullmatch(order_id):
        return not_found(request, "Order")
    result = await act(order_id)
    if result.order is None and any(error.code == "NOT_FOUND" for error in result.errors):
        return not_found(request, "Order")
    _report(request, result, describe)
    return redirect(f"/orders/{order_id}")


def _captured(order: Order) -> str:
    return f"Payment captured: {format_cents(order.captured_cents)} charged, the order is paid."


def _cancelled(order: Order) -> str:
    if order.captured_cents:
        owed = order.captured_cents - order.refunded_cents
        money = (
            f"{format_cents(order.refunded_cents)} refunded to the card"
            if not owed
            else f"the refund of {format_cents(owed)} is being retried"
        )
    elif order.authorized_cents:
        money = "the card's authorization is voided"
    else:
        money = "no card was authorized"
    return f"The order is cancelled: {money}; its stock is back."


@router.post("/orders/{order_id}/capture")
async def capture_submit(request: Request, gateway: AdminDep, order_id: str) -> Response:
    return await _order_action(request, order_id, gateway.capture_payment, _captured)


@router.post("/orders/{order_id}/cancel")
async def cancel_submit(request: Request, gateway: AdminDep, order_id: str) -> Response:
    return await _order_action(request, order_id, gateway.cancel_order, _cancelled)


@router.post("/orders/{order_id}/refund", response_class=HTMLResponse)
async def refund_submit(request: Request, gateway: AdminDep, order_id: str) -> Response:
    form = await checked_form(request)
    order = await gateway.order(order_id) if _ID.fullmatch(order_id) else None
    if order is None:
        return not_found(request, "Order")
    values = {key: _text(form, key) for key in ("amount", "reason")}
    key = _text(form, "idempotency_key")
    errors: dict[str, str] = {}
    amount, reason = 0, ""
    try:
        amount = parse_refund_amount(values["amount"], refundable_cents=refundable_cents(order))
    except FieldError as exc:
        errors["amount"] = exc.message
    try:
        reason = parse_reason(values["reason"])
    except FieldError as exc:
        errors["reason"] = exc.message
    problems: list[str] = []
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        problems.append("This form is not valid any more. Nothing was refunded; please try again.")
    if errors or problems:
        # Nothing was sent: the same key may go with the corrected form.
        keep = {"refund_key": key} if not problems else {}
        context = _order_context(
            order, refund_values=values, refund_errors=errors, refund_problems=problems, **keep
        )
        return render(request, "order.html", context, status_code=422)
    result = await gateway.refund_payment(order_id, amount_cents=amount, reason=reason, idempotency_key=key)
    if result.order is not None and not result.errors:
        flash(request, f"Refunded {format_cents(amount)} ({reason}).")
        return redirect(f"/orders/{order_id}")
    errors, problems = _place_errors(result.errors, {"amount", "reason"})
    if not errors and not problems:
        problems = ["Nothing was refunded."]
    fresh = result.order or order
    context = _order_context(fresh, refund_values=values, refund_errors=errors, refund_problems=problems)
    return render(request, "order.html", context, status_code=409 if result.errors else 422)

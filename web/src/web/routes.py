"""The shop's pages: thin handlers that read forms, call the gateway and render templates.

Every form POST answers with a redirect (POST/redirect/GET) or with the page again and a 4xx explaining
what to fix. The cart cookie is rewritten only by the handlers that change it.
"""

import asyncio
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from servicekit.rules import MAX_QTY_PER_LINE
from uikit.csrf import csrf_token
from web.cart import (
    COOKIE_NAME,
    Cart,
    FormInputError,
    Signer,
    parse_product_id,
    parse_quantity,
)
from web.checkout import (
    CARD_FIELD,
    CUSTOMER_FIELDS,
    DECLINE_MESSAGES,
    TEST_CARDS,
    form_field,
    parse_card_number,
    parse_customer,
    time_left,
)
from web.gateway import GatewayClient, Order, OrderResult, Product, UserError
from web.settings import WebSettings

log = structlog.get_logger()

router = APIRouter()

# asgi-csrf refuses a POST to these paths without a valid token even when the browser sends no cookies at all.
CSRF_PROTECTED_PATHS = frozenset({"/cart/add", "/cart/update", "/cart/remove", "/checkout", "/checkout/pay"})

_IDEMPOTENCY_KEY = re.compile(r"^[0-9a-f]{32}$")
_CURSOR = re.compile(r"^[A-Za-z0-9_\-=:.]{1,200}$")
CART_COOKIE_MAX_AGE = 30 * 24 * 3600


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


def gateway(request: Request) -> GatewayClient:
    client: GatewayClient = request.app.state.gateway
    return client


def signer(request: Request) -> Signer:
    value: Signer = request.app.state.signer
    return value


def current_cart(request: Request) -> Cart:
    return signer(request).load_cart(request.cookies.get(COOKIE_NAME))


GatewayDep = Annotated[GatewayClient, Depends(gateway)]
CartDep = Annotated[Cart, Depends(current_cart)]


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    cart = context.pop("cart_for_count", None) or current_cart(request)
    response: Response = request.app.state.templates.TemplateResponse(
        request,
        template,
        {
            "csrf_token": csrf_token(request),
            "cart_count": cart.item_count,
            "request_id": request_id(request),
            "max_qty": MAX_QTY_PER_LINE,
            **context,
        },
        status_code=status_code,
    )
    return response  # Cache-Control: no-store and the other security headers: uikit.headers.SecurityHeaders


def form_error(request: Request, status: int, message: str, back: str | None = None) -> Response:
    return render(
        request,
        "error.html",
        {"title": "Please check what you entered", "message": message, "status": status, "back": back},
        status_code=status,
    )


def redirect_with_cart(request: Request, url: str, cart: Cart) -> Response:
    response = RedirectResponse(url, status_code=303)
    set_cart_cookie(request, response, cart)
    return response


def set_cart_cookie(request: Request, response: Response, cart: Cart) -> None:
    settings: WebSettings = request.app.state.settings
    if cart.is_empty:
        response.delete_cookie(
            COOKIE_NAME, path="/", httponly=True, samesite="lax", secure=settings.cookie_secure
        )
        return
    response.set_cookie(
        COOKIE_NAME,
        signer(request).dump_cart(cart),
        max_age=CART_COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )


@router.get("/")
async def product_list(request: Request, client: GatewayDep, after: str | None = None) -> Response:
    if after is not None and not _CURSOR.match(after):
        return form_error(request, 400, "That page link is not valid.", back="/")
    settings: WebSettings = request.app.state.settings
    page = await client.products(settings.products_per_page, after, request_id=request_id(request))
    return render(request, "products.html", {"page": page, "is_first_page": after is None})


@router.get("/products/{product_id}")
async def product_detail(request: Request, product_id: str, client: GatewayDep, cart: CartDep) -> Response:
    try:
        pid = parse_product_id(product_id)
    except FormInputError:
        return render(request, "error.html", _not_found_context(), status_code=404)
    product = await client.product(pid, request_id=request_id(request))
    if product is None:
        return render(request, "error.html", _not_found_context(), status_code=404)
    return render(request, "product.html", {"product": product, "in_cart": cart.quantity_of(pid)})


def _not_found_context() -> dict[str, Any]:
    return {
        "title": "Product not found",
        "message": "We could not find that product. It may have been removed.",
        "status": 404,
        "back": "/",
    }


async def _read_form(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=20)


@router.post("/cart/add")
async def cart_add(request: Request, client: GatewayDep, cart: CartDep) -> Response:
    form = await _read_form(request)
    try:
        pid = parse_product_id(_field(form, "product_id"))
        qty = parse_quantity(_field(form, "qty"))
    except FormInputError as exc:
        return form_error(request, 422, str(exc), back="/")
    product = await client.product(pid, request_id=request_id(request))
    if product is None:
        return render(request, "error.html", _not_found_context(), status_code=404)
    if product.stock_qty <= 0:
        return render(
            request,
            "product.html",
            {"product": product, "in_cart": cart.quantity_of(pid), "error": f"{product.name} is sold out."},
            status_code=409,
        )
    try:
        cart = cart.add(pid, qty)
    except FormInputError as exc:
        return form_error(request, 422, str(exc), back="/cart")
    log.info("cart_line_added", product_id=pid, qty=qty)
    return redirect_with_cart(request, "/cart?added=" + pid, cart)


@router.post("/cart/update")
async def cart_update(request: Request, cart: CartDep) -> Response:
    form = await _read_form(request)
    try:
        pid = parse_product_id(_field(form, "product_id"))
        qty = parse_quantity(_field(form, "qty"), allow_zero=True)
    except FormInputError as exc:
        return form_error(request, 422, str(exc), back="/cart")
    return redirect_with_cart(request, "/cart", cart.set_quantity(pid, qty))


@router.post("/cart/remove")
async def cart_remove(request: Request, cart: CartDep) -> Response:
    form = await _read_form(request)
    try:
        pid = parse_product_id(_field(form, "product_id"))
    except FormInputError as exc:
        return form_error(request, 422, str(exc), back="/cart")
    return redirect_with_cart(request, "/cart", cart.remove(pid))


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


async def _cart_view(client: GatewayClient, cart: Cart, rid: str) -> tuple[list[dict[str, Any]], int, Cart]:
    """The cart's lines with fresh names, prices and stock; products that no longer exist are dropped."""
    products = await client.products_by_id([pid for pid, _ in cart.lines], request_id=rid)
    lines = []
    total = 0
    for pid, qty in cart.lines:
        product = products.get(pid)
        if product is None:
            continue
        lines.append({"product": product, "qty": qty, "line_total": qty * product.price_cents})
        total += qty * product.price_cents
    kept = Cart(tuple((pid, qty) for pid, qty in cart.lines if pid in products))
    return lines, total, kept


@router.get("/cart")
async def cart_page(
    request: Request, client: GatewayDep, cart: CartDep, added: str | None = None
) -> Response:
    lines, total, kept = await _cart_view(client, cart, request_id(request))
    added_product = next((line["product"] for line in lines if line["product"].id == added), None)
    response = render(
        request,
        "cart.html",
        {
            "lines": lines,
            "total": total,
            "added": added_product,
            "dropped": len(kept.lines) < len(cart.lines),
            "cart_for_count": kept,
        },
    )
    if kept != cart:
        set_cart_cookie(request, response, kept)
    return response


@router.get("/checkout")
async def checkout_page(request: Request, client: GatewayDep, cart: CartDep) -> Response:
    if cart.is_empty:
        return RedirectResponse("/cart", status_code=303)
    return await _render_checkout(request, client, cart)


async def _render_checkout(
    request: Request,
    client: GatewayClient,
    cart: Cart,
    *,
    problems: list[str] | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The summary and the form with a fresh idempotency key: every rendering of this page is one potential
    order. What the shopper typed comes back in ``values`` (never the card number)."""
    lines, total, kept = await _cart_view(client, cart, request_id(request))
    if kept.is_empty:
        return RedirectResponse("/cart", status_code=303)
    key = uuid.uuid4().hex
    response = render(
        request,
        "checkout.html",
        {
            "lines": lines,
            "total": total,
            "idempotency_key": key,
            "checkout_token": signer(request).dump_checkout(kept, key),
            "problems": problems or [],
            "values": values or dict.fromkeys(CUSTOMER_FIELDS, ""),
            "errors": errors or {},
            "test_cards": TEST_CARDS,
            "cart_for_count": kept,
        },
        status_code=status_code,
    )
    if kept != cart:
        set_cart_cookie(request, response, kept)
    return response


@router.post("/checkout")
async def place_order(request: Request, client: GatewayDep, cart: CartDep) -> Response:
    """Places exactly the order the checkout page showed (its lines travel signed in the form), with that
    page's idempotency key: a double click or a resubmitted form replays the same order, never a second.
    Then asks for the card to be authorized; whatever the card's answer, the order's own page says what
    happened and what to do next (another card, or nothing: it will be charged when it ships)."""
    form = await _read_form(request)
    key = _field(form, "idempotency_key") or ""
    snapshot = signer(request).load_checkout(_field(form, "checkout_token"))
    if snapshot is None or not _IDEMPOTENCY_KEY.match(key) or snapshot[0] != key:
        return form_error(
            request, 400, "This checkout form is not valid any more. Please review your cart.", "/cart"
        )
    _, ordered = snapshot
    base = cart if not cart.is_empty else ordered
    values = {name: _field(form, name) or "" for name in CUSTOMER_FIELDS}
    customer, errors = parse_customer(values)
    card_number = ""
    try:
        card_number = parse_card_number(_field(form, CARD_FIELD))
    except FormInputError as exc:
        errors[CARD_FIELD] = str(exc)
    if customer is None or errors:
        log.info("checkout_form_refused", fields=sorted(errors))
        return await _render_checkout(request, client, base, values=values, errors=errors, status_code=422)
    rid = request_id(request)
    settings: WebSettings = request.app.state.settings
    deadline = time.monotonic() + settings.checkout_in_use_deadline_s
    delay = 0.05
    while True:
        result = await client.place_order(list(ordered.lines), key, customer.to_input(), request_id=rid)
        in_use = any(e.code == "IDEMPOTENCY_KEY_IN_USE" for e in result.errors)
        # The first click's request is still running: wait for it and replay its answer.
        if not in_use or time.monotonic() + delay > deadline:
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)
    if result.order is None or result.errors or not result.access_token:
        return await _checkout_refused(request, client, base, result.errors, values)
    log.info("checkout_order_placed", order_id=result.order.id, total_cents=result.order.total_cents)
    authorized = await client.authorize_payment(
        result.order.id, result.access_token, card_number, request_id=rid
    )
    return await _after_authorize(request, client, cart, result.order.id, result.access_token, authorized)


@router.post("/checkout/pay")
async def pay_order(request: Request, client: GatewayDep, cart: CartDep) -> Response:
    """Another card for an order whose card was declined: its reservation still holds until it expires."""
    form = await _read_form(request)
    order_id, token = _field(form, "order_id") or "", _field(form, "token") or ""
    if not _is_order_link(order_id, token):
        return _order_not_found(request)
    try:
        card_number = parse_card_number(_field(form, CARD_FIELD))
    except FormInputError as exc:
        order = await client.order(order_id, token, request_id=request_id(request))
        if order is None:
            return _order_not_found(request)
        return _render_order(request, order, token, card_error=str(exc), status_code=422)
    authorized = await client.authorize_payment(order_id, token, card_number, request_id=request_id(request))
    return await _after_authorize(request, client, cart, order_id, token, authorized)


async def _after_authorize(
    request: Request, client: GatewayClient, cart: Cart, order_id: str, token: str, result: OrderResult
) -> Response:
    """To the order's page (POST/redirect/GET), which shows the outcome from the order itself; the cart is
    emptied of the order's products only once the card is authorized, so a decline or an expiry keeps it."""
    codes = {e.code for e in result.errors}
    log.info("checkout_authorize_answered", order_id=order_id, codes=sorted(codes))
    if "NOT_FOUND" in codes:
        return _order_not_found(request)
    if "INVALID_CARD" in codes or "PAYMENT_UNAVAILABLE" in codes:
        order = result.order or await client.order(order_id, token, request_id=request_id(request))
        if order is None:
            return _order_not_found(request)
        if "INVALID_CARD" in codes:
            message = next((e.message for e in result.errors if e.code == "INVALID_CARD"), "")
            return _render_order(
                request, order, token, card_error=message or "That card number is not valid.", status_code=422
            )
        response = _render_order(
            request,
            order,
            token,
            problem="We could not reach the card processor just now. Nothing was charged and your items are "
            "still reserved: please try again in a moment.",
            status_code=503,
        )
        response.headers["Retry-After"] = "5"
        return response
    response = RedirectResponse(order_path(order_id, token), status_code=303)
    if result.order is not None and result.order.status in PAID_OR_AUTHORIZED:
        remaining = cart
        for pid in [line.product.id for line in result.order.items]:
            # Anything added in another tab since stays.
            remaining = remaining.remove(pid)
        set_cart_cookie(request, response, remaining)
    return response


async def _checkout_refused(
    request: Request, client: GatewayClient, base: Cart, errors: list[UserError], values: dict[str, str]
) -> Response:
    codes = {e.code for e in errors}
    log.info("checkout_refused", codes=sorted(codes))
    rid = request_id(request)
    if "IDEMPOTENCY_KEY_IN_USE" in codes:
        return render(
            request,
            "error.html",
            {
                "title": "Your order is still being placed",
                "message": "We are still working on this order. Please wait a moment and reload this page.",
                "status": 409,
                "back": "/cart",
            },
            status_code=409,
        )
    if "INSUFFICIENT_STOCK" in codes or "UNKNOWN_PRODUCT" in codes:
        ids = [e.product_id for e in errors if e.product_id]
        products = await client.products_by_id(ids, request_id=rid) if ids else {}
        problems = [_describe_stock_problem(e, products.get(e.product_id or "")) for e in errors]
        return await _render_checkout(
            request, client, base, problems=problems, values=values, status_code=409
        )
    if "IDEMPOTENCY_KEY_REUSED" in codes:
        return await _render_checkout(
            request,
            client,
            base,
            problems=[
                "Your cart or your details changed after this checkout page was opened. "
                "Please review them and place the order again."
            ],
            values=values,
            status_code=409,
        )
    field_errors: dict[str, str] = {}
    problems = []
    for error in errors:
        name = form_field(error.field)
        if name is not None and name not in field_errors:
            field_errors[name] = error.message
        else:
            problems.append(error.message)
    if not field_errors and not problems:
        problems = ["The order could not be placed."]
    return await _render_checkout(
        request, client, base, problems=problems, values=values, errors=field_errors, status_code=422
    )


def _describe_stock_problem(error: UserError, product: Product | None) -> str:
    name = product.name if product else f"Product {error.product_id}"
    if error.code == "UNKNOWN_PRODUCT":
        return f"{name} is no longer sold. Please remove it from your cart."
    if error.code != "INSUFFICIENT_STOCK":
        return error.message
    available = error.available if error.available is not None else (product.stock_qty if product else 0)
    if available <= 0:
        return f"Sorry, {name} is sold out (0 left). Please remove it from your cart."
    wanted = f" (you asked for {error.requested})" if error.requested is not None else ""
    return f"Sorry, only {available} of {name} left{wanted}. Please lower the quantity in your cart."


# --- The order's own page, gated by its access token -------------------------------------------------------

AWAITING_PAYMENT = frozenset({"PENDING", "PAYMENT_FAILED"})
PAID_OR_AUTHORIZED = frozenset({"AUTHORIZED", "PAID"})
_ORDER_ID = re.compile(r"^[1-9][0-9]{0,17}$")
_ACCESS_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{16,128}$")


def order_path(order_id: str, token: str) -> str:
    """The order's page: the access token is what opens it (order ids alone are enumerable)."""
    return f"/orders/{order_id}?{urlencode({'token': token})}"


def _is_order_link(order_id: str, token: str | None) -> bool:
    return bool(_ORDER_ID.match(order_id) and token and _ACCESS_TOKEN.match(token))


def _order_not_found(request: Request) -> Response:
    return render(
        request,
        "error.html",
        {
            "title": "Order not found",
            "message": "We could not find that order. Please use the link from your order confirmation.",
            "status": 404,
            "back": "/",
        },
        status_code=404,
    )


def _render_order(
    request: Request,
    order: Order,
    token: str,
    *,
    card_error: str | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    now = datetime.now(UTC)
    awaiting = order.status in AWAITING_PAYMENT
    # authorize refuses once expires_at has passed, swept or not: the page says so at the same moment.
    lapsed = awaiting and order.expires_at is not None and order.expires_at <= now
    context = {
        "order": order,
        "token": token,
        "expired": order.status == "EXPIRED" or lapsed,
        "awaiting_payment": awaiting and not lapsed,
        "time_left": time_left(order.expires_at, now) if awaiting and order.expires_at else None,
        "expires_label": order.expires_at.astimezone(UTC).strftime("%H:%M:%S UTC")
        if order.expires_at
        else None,
        "decline": DECLINE_MESSAGES.get(order.payment_failure_code or "", DECLINE_MESSAGES["card_declined"])
        if order.status == "PAYMENT_FAILED"
        else None,
        "card_error": card_error,
        "problem": problem,
        "test_cards": TEST_CARDS,
    }
    return render(request, "order.html", context, status_code=status_code)


@router.get("/orders/{order_id}")
async def order_status(
    request: Request, order_id: str, client: GatewayDep, token: str | None = None
) -> Response:
    if not _is_order_link(order_id, token):
        return _order_not_found(request)
    assert token is not None
    order = await client.order(order_id, token, request_id=request_id(request))
    if order is None:
        return _order_not_found(request)
    return _render_order(request, order, token)

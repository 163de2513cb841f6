"""The shop's pages: thin handlers that read forms, call the gateway and render templates.

Every form POST answers with a redirect (POST/redirect/GET) or with the page again and a 4xx explaining
what to fix. The cart cookie is rewritten only by the handlers that change it.
"""

import asyncio
import re
import time
import uuid
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, RedirectResponse, Response

from web.cart import (
    COOKIE_NAME,
    MAX_QTY_PER_LINE,
    Cart,
    FormInputError,
    Signer,
    parse_product_id,
    parse_quantity,
)
from web.gateway import GatewayClient, Order, Product, UserError
from web.settings import WebSettings

log = structlog.get_logger()

router = APIRouter()

# asgi-csrf refuses a POST to these paths without a valid token even when the browser sends no cookies at all.
CSRF_PROTECTED_PATHS = frozenset({"/cart/add", "/cart/update", "/cart/remove", "/checkout"})

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
    csrf = request.scope.get("csrftoken")
    cart = context.pop("cart_for_count", None) or current_cart(request)
    response: Response = request.app.state.templates.TemplateResponse(
        request,
        template,
        {
            "csrf_token": csrf() if csrf else None,
            "cart_count": cart.item_count,
            "request_id": request_id(request),
            "max_qty": MAX_QTY_PER_LINE,
            **context,
        },
        status_code=status_code,
    )
    response.headers.setdefault("Cache-Control", "no-store")
    return response


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


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(client: GatewayDep) -> JSONResponse:
    ready = await client.ready()
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": {"gateway": ready}},
        status_code=200 if ready else 503,
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
    status_code: int = 200,
) -> Response:
    """The summary with a fresh idempotency key: every rendering of this page is one potential order."""
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
    page's idempotency key: a double click or a resubmitted form replays the same order, never a second."""
    form = await _read_form(request)
    key = _field(form, "idempotency_key") or ""
    snapshot = signer(request).load_checkout(_field(form, "checkout_token"))
    if snapshot is None or not _IDEMPOTENCY_KEY.match(key) or snapshot[0] != key:
        return form_error(
            request, 400, "This checkout form is not valid any more. Please review your cart.", "/cart"
        )
    _, ordered = snapshot
    rid = request_id(request)
    settings: WebSettings = request.app.state.settings
    deadline = time.monotonic() + settings.checkout_in_use_deadline_s
    delay = 0.05
    while True:
        result = await client.place_order(list(ordered.lines), key, request_id=rid)
        in_use = any(e.code == "IDEMPOTENCY_KEY_IN_USE" for e in result.errors)
        # The first click's request is still running: wait for it and replay its answer.
        if not in_use or time.monotonic() + delay > deadline:
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)
    if result.order is not None and not result.errors:
        log.info("checkout_order_placed", order_id=result.order.id, total_cents=result.order.total_cents)
        response = RedirectResponse(f"/orders/{signer(request).dump_order(result.order.id)}", status_code=303)
        # The cart is emptied of what was ordered; anything added in another tab since stays.
        remaining = cart
        for pid, _ in ordered.lines:
            remaining = remaining.remove(pid)
        set_cart_cookie(request, response, remaining)
        return response
    return await _checkout_refused(request, client, cart, ordered, result.errors)


async def _checkout_refused(
    request: Request, client: GatewayClient, cart: Cart, ordered: Cart, errors: list[UserError]
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
        base = cart if not cart.is_empty else ordered
        return await _render_checkout(request, client, base, problems=problems, status_code=409)
    if "IDEMPOTENCY_KEY_REUSED" in codes:
        base = cart if not cart.is_empty else ordered
        return await _render_checkout(
            request,
            client,
            base,
            problems=[
                "Your cart changed after this checkout page was opened. "
                "Please review it and place the order again."
            ],
            status_code=409,
        )
    messages = [e.message for e in errors] or ["The order could not be placed."]
    return form_error(request, 422, " ".join(messages), back="/cart")


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


@router.get("/orders/{token}")
async def order_confirmation(request: Request, token: str, client: GatewayDep) -> Response:
    order_id = signer(request).load_order(token)
    order: Order | None = None
    if order_id is not None:
        order = await client.order(order_id, request_id=request_id(request))
    if order is None:
        return render(
            request,
            "error.html",
            {
                "title": "Order not found",
                "message": "We could not find that order.",
                "status": 404,
                "back": "/",
            },
            status_code=404,
        )
    return render(request, "order.html", {"order": order})

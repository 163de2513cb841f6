"""The pages over what the notifications worker did: Outgoing mail, Webhooks (register, delivery log,
redeliver, delete), Alerts and Sales. Same rules as routes.py: a session for every page, a CSRF-checked
form, POST-redirect-GET, bad input answered next to its field."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from admin.chart import bar_chart
from admin.gateway import AdminGateway, UserError
from admin.routes import AdminDep, _after, _place_errors, _text, not_found, redirect, render
from admin.session import checked_form, flash

router = APIRouter()

_ID = re.compile(r"[0-9]{1,18}")
MAX_URL = 2_000
MAX_DESCRIPTION = 500
ALL_EVENTS = "*"
DELIVERIES_SHOWN = 20  # with their attempt logs, 20 keeps the page under the gateway's query cost limit
ALERTS_SHOWN = 200
SALES_DAYS = 30


# --- Outgoing mail -----------------------------------------------------------------------------------------


@router.get("/mail", response_class=HTMLResponse)
async def mail_page(request: Request, gateway: AdminDep, after: str | None = None) -> Response:
    cursor = _after(after)
    if cursor is not None and not _ID.fullmatch(cursor):
        cursor = None  # a hand-edited cursor: the first page, rather than an error
    page = await gateway.emails(first=request.app.state.settings.page_size, after=cursor)
    return render(request, "mail.html", {"page": page, "after": cursor})


@router.get("/mail/{email_id}", response_class=HTMLResponse)
async def mail_detail_page(request: Request, gateway: AdminDep, email_id: str) -> Response:
    email = await gateway.email(email_id) if _ID.fullmatch(email_id) else None
    if email is None:
        return not_found(request, "Email")
    return render(request, "mail_detail.html", {"email": email})


# --- Webhooks ----------------------------------------------------------------------------------------------


async def _webhooks_context(gateway: AdminGateway, **overrides: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "endpoints": await gateway.webhook_endpoints(),
        "event_types": await gateway.webhook_event_types(),
        "all_events": ALL_EVENTS,
        "values": {"url": "", "description": "", "event_types": []},
        "errors": {},
        "problems": [],
    }
    context.update(overrides)
    return context


@router.get("/webhooks", response_class=HTMLResponse)
async def webhooks_page(request: Request, gateway: AdminDep) -> Response:
    return render(request, "webhooks.html", await _webhooks_context(gateway))


def _check_endpoint_form(url: str, chosen: list[str], description: str, known: list[str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not url:
        errors["url"] = "Enter the URL to send webhooks to."
    elif len(url) > MAX_URL:
        errors["url"] = f"A URL is at most {MAX_URL:,} characters."
    elif not url.isprintable() or not url.lower().startswith(("http://", "https://")):
        errors["url"] = "Enter a URL that starts with http:// or https://."
    if not chosen:
        errors["event_types"] = "Choose at least one event type."
    elif not set(chosen) <= {*known, ALL_EVENTS}:
        errors["event_types"] = "Choose event types from the list."
    if len(description) > MAX_DESCRIPTION:
        errors["description"] = f"At most {MAX_DESCRIPTION} characters."
    elif not description.isprintable():
        errors["description"] = "Use printable characters only."
    return errors


@router.post("/webhooks", response_class=HTMLResponse)
async def register_webhook_submit(request: Request, gateway: AdminDep) -> Response:
    """Answered with the page itself, not a redirect: the signing secret is in this answer only (never in
    the session cookie, which is signed, not encrypted), and the admin copies it from here."""
    form = await checked_form(request)
    url, description = _text(form, "url").strip(), _text(form, "description").strip()
    chosen = [value for value in form.getlist("event_types") if isinstance(value, str)]
    values = {"url": url, "description": description, "event_types": chosen}
    known = await gateway.webhook_event_types()
    errors = _check_endpoint_form(url, chosen, description, known)
    problems: list[str] = []
    if not errors:
        types = [ALL_EVENTS] if ALL_EVENTS in chosen else sorted(set(chosen))
        result = await gateway.register_webhook_endpoint(url=url, event_types=types, description=description)
        if result.endpoint is not None and result.secret and not result.errors:
            context = await _webhooks_context(gateway, created=result.endpoint, secret=result.secret)
            return render(request, "webhooks.html", context, status_code=201)
        errors, problems = _place_errors(result.errors, {"url", "event_types", "description"})
    context = await _webhooks_context(gateway, values=values, errors=errors, problems=problems)
    return render(request, "webhooks.html", context, status_code=422)


@router.get("/webhooks/{endpoint_id}", response_class=HTMLResponse)
async def webhook_page(request: Request, gateway: AdminDep, endpoint_id: str) -> Response:
    endpoint = (
        await gateway.webhook_endpoint(endpoint_id, deliveries=DELIVERIES_SHOWN)
        if _ID.fullmatch(endpoint_id)
        else None
    )
    if endpoint is None:
        return not_found(request, "Webhook endpoint")
    return render(request, "webhook.html", {"endpoint": endpoint})


def _flash_errors(request: Request, errors: list[UserError], fallback: str) -> None:
    flash(request, " ".join(error.message for error in errors) or fallback, "error")


@router.post("/webhooks/{endpoint_id}/delete")
async def delete_webhook_submit(request: Request, gateway: AdminDep, endpoint_id: str) -> Response:
    await checked_form(request)
    if not _ID.fullmatch(endpoint_id):
        return not_found(request, "Webhook endpoint")
    errors = await gateway.delete_webhook_endpoint(endpoint_id)
    if any(error.code == "NOT_FOUND" for error in errors):
        return not_found(request, "Webhook endpoint")
    if errors:
        _flash_errors(request, errors, "Nothing was deleted.")
    else:
        flash(request, f"Webhook endpoint #{endpoint_id} deleted: nothing more is sent to it.")
    return redirect("/webhooks")


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver")
async def redeliver_submit(
    request: Request, gateway: AdminDep, endpoint_id: str, delivery_id: str
) -> Response:
    await checked_form(request)
    if not (_ID.fullmatch(endpoint_id) and _ID.fullmatch(delivery_id)):
        return not_found(request, "Webhook delivery")
    errors = await gateway.redeliver_webhook(delivery_id)
    if any(error.code == "NOT_FOUND" for error in errors):
        return not_found(request, "Webhook delivery")
    if errors:
        _flash_errors(request, errors, "Nothing was sent.")
    else:
        flash(request, f"Delivery #{delivery_id} is being sent again; its new attempt appears below.")
    return redirect(f"/webhooks/{endpoint_id}")


# --- Alerts and sales --------------------------------------------------------------------------------------


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(request: Request, gateway: AdminDep) -> Response:
    alerts = await gateway.low_stock_alerts(first=ALERTS_SHOWN)
    context = {
        "open_alerts": [a for a in alerts if a.open],
        "closed_alerts": [a for a in alerts if not a.open],
    }
    return render(request, "alerts.html", context)


@router.get("/sales", response_class=HTMLResponse)
async def sales_page(request: Request, gateway: AdminDep) -> Response:
    today = datetime.now(UTC).date()
    report = await gateway.sales_report(first=today - timedelta(days=SALES_DAYS - 1), last=today)
    chart = bar_chart([(day.day, day.revenue_cents) for day in report.days])
    return render(request, "sales.html", {"report": report, "chart": chart, "days": SALES_DAYS})

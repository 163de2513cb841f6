"""Order emails: rendered from Jinja templates (plain text and HTML) and sent over SMTP with aiosmtplib.

The Message-ID is derived from the event id, so an email sent again after a crash between SMTP's answer
and our record of it (the one window left) is the same message, with the same Message-ID."""

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

import aiosmtplib
import jinja2

from notifications.events import OrderData, StockLevel

TEMPLATES = Path(__file__).parent / "templates"

# Event type -> (kind, subject). The kind names the templates: templates/<kind>.txt and .html.
EMAILS = {
    "order.placed": ("order_placed", "Your lockstock order #{order_id} is placed"),
    "order.paid": ("order_paid", "Receipt for your lockstock order #{order_id}"),
    "order.cancelled": ("order_cancelled", "Your lockstock order #{order_id} is cancelled"),
    "order.refunded": ("order_refunded", "A refund for your lockstock order #{order_id}"),
}

_text = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False, undefined=jinja2.StrictUndefined
)
_html = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
)


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


_text.filters["money"] = _html.filters["money"] = money


@dataclass(frozen=True)
class Email:
    kind: str
    message_id: str
    to_address: str
    subject: str
    text_body: str
    html_body: str


def message_id(event_id: UUID, domain: str) -> str:
    return f"<{event_id}@{domain}>"


def render(event_type: str, event_id: UUID, data: OrderData, *, domain: str, shop_url: str) -> Email | None:
    """The email for the event, or None when the order has no customer email to send it to."""
    if data.customer is None:
        return None
    kind, subject = EMAILS[event_type]
    context: dict[str, Any] = {"order": data, "event": data.model_dump(), "shop_url": shop_url}
    return Email(
        kind=kind,
        message_id=message_id(event_id, domain),
        to_address=data.customer.email,
        subject=subject.format(order_id=data.order_id),
        text_body=_text.get_template(f"{kind}.txt").render(context),
        html_body=_html.get_template(f"{kind}.html").render(context),
    )


def render_low_stock(
    event_id: UUID, data: StockLevel, to_address: str, *, domain: str, shop_url: str
) -> Email:
    """The shop owner's notice that a product's low-stock alert opened."""
    context: dict[str, Any] = {"product": data, "shop_url": shop_url}
    return Email(
        kind="low_stock",
        message_id=message_id(event_id, domain),
        to_address=to_address,
        subject=f"Low stock: {data.name} ({data.stock_qty} left)",
        text_body=_text.get_template("low_stock.txt").render(context),
        html_body=_html.get_template("low_stock.html").render(context),
    )


def build_message(email: Email, mail_from: str, name: str | None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = formataddr((name or "", email.to_address))
    message["Subject"] = email.subject
    message["Message-ID"] = email.message_id
    message["X-Lockstock-Kind"] = email.kind
    message["Date"] = format_datetime(datetime.now(UTC))
    message.set_content(email.text_body)
    message.add_alternative(email.html_body, subtype="html")
    return message


async def send(message: EmailMessage, smtp_url: str, timeout_s: float) -> None:
    """Send over SMTP: smtp://[user:password@]host[:port][?starttls=true] or smtps:// (implicit TLS)."""
    parts = urlsplit(smtp_url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ValueError("NOTIFICATIONS_SMTP_URL must be smtp://host:port or smtps://host:port")
    query = parse_qs(parts.query)
    await aiosmtplib.send(
        message,
        hostname=parts.hostname,
        port=parts.port or (465 if parts.scheme == "smtps" else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=parts.scheme == "smtps",
        start_tls=query.get("starttls", ["false"])[0].lower() == "true",
        timeout=timeout_s,
    )

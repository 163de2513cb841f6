"""Webhook URLs that may be registered, and one signed delivery attempt (Standard Webhooks)."""

import asyncio
import base64
import ipaddress
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from standardwebhooks.webhooks import Webhook

from notifications.errors import WebhookUrlNotAllowed
from notifications.events import Event

USER_AGENT = "lockstock-webhooks/1"


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse what is not http(s) to a host that resolves, and (unless allowed) any host with an address
    that is not globally routable: loopback, private, link-local (cloud metadata), multicast, reserved."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise WebhookUrlNotAllowed("A webhook URL must be http:// or https:// with a host.", url=url)
    if parts.username or parts.password:
        raise WebhookUrlNotAllowed("A webhook URL must not carry credentials.", url=url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookUrlNotAllowed("The webhook URL's port is not a number.", url=url) from None
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port)
    except OSError:
        raise WebhookUrlNotAllowed(f"{parts.hostname} does not resolve.", url=url) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise WebhookUrlNotAllowed(
                f"{parts.hostname} resolves to {address}, a private or loopback address; set "
                "NOTIFICATIONS_WEBHOOKS_ALLOW_PRIVATE=true to allow it.",
                url=url,
            )


def payload(event: Event) -> str:
    """The body, exactly as signed: ``{"type", "timestamp", "data"}`` as Standard Webhooks suggests."""
    return json.dumps(
        {
            "type": event.type,
            "version": event.version,
            "timestamp": event.occurred_at.astimezone(UTC).isoformat(),
            "data": event.data,
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def signed_headers(secret: str, event: Event, body: str, at: datetime) -> dict[str, str]:
    """``webhook-id`` is the event id, the same on every attempt, so a receiver can dedupe on it."""
    msg_id = str(event.event_id)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


@dataclass(frozen=True)
class AttemptResult:
    succeeded: bool
    response_code: int | None
    error: str | None
    duration_ms: int


async def attempt(
    client: httpx.AsyncClient, url: str, secret: str, event: Event, *, allow_private: bool, timeout_s: float
) -> AttemptResult:
    """POST the event once. 2xx is success; anything else (a redirect, an error status, a timeout, a
    refused connection, an address that became private) is a failure to retry."""
    started = time.monotonic()

    def result(succeeded: bool, code: int | None = None, error: str | None = None) -> AttemptResult:
        return AttemptResult(succeeded, code, error, int((time.monotonic() - started) * 1000))

    try:
        # Checked again at each attempt: the name may resolve elsewhere now than at registration.
        await check_url(url, allow_private=allow_private)
    except WebhookUrlNotAllowed as exc:
        return result(False, error=exc.detail)
    body = payload(event)
    # The signature's timestamp is the real time, whatever clock schedules retries: receivers check it.
    headers = signed_headers(secret, event, body, datetime.now(UTC))
    try:
        response = await client.post(
            url, content=body.encode(), headers=headers, timeout=timeout_s, follow_redirects=False
        )
    except httpx.TimeoutException:
        return result(False, error=f"timed out after {timeout_s:g} s")
    except httpx.HTTPError as exc:
        return result(False, error=f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return result(True, response.status_code)
    return result(False, response.status_code, f"HTTP {response.status_code}")


def describe(result: AttemptResult) -> dict[str, Any]:
    return {"response_code": result.response_code, "error": result.error, "duration_ms": result.duration_ms}

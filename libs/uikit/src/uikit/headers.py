"""The UIs' security headers, on every response the app sends: pages, redirects, error pages (including the
ones middleware answers itself: 413, a refused form, a crash page), so no handler can forget them."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """Pure ASGI. Adds, unless the response set its own:

    - ``Content-Security-Policy``: the app's own (``content_security_policy``);
    - ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin``;
    - ``Cache-Control: no-store`` (a page can show a cart, an order or an admin's data: no shared or back-
      button cache keeps it), except on a successful answer under ``cacheable_prefixes`` (the static files).

    Place it outside every middleware that answers by itself, inside the request-context one."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        content_security_policy: str,
        cacheable_prefixes: tuple[str, ...] = ("/static/",),
    ) -> None:
        self.app = app
        self.cacheable_prefixes = cacheable_prefixes
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-security-policy", content_security_policy.encode("latin-1")),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable_path = str(scope.get("path", "")).startswith(self.cacheable_prefixes)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in self.headers if name not in present]
                cacheable = cacheable_path and (200 <= message["status"] < 300 or message["status"] == 304)
                if b"cache-control" not in present and not cacheable:
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

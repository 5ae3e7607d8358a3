"""Response headers for the staff pages: never cached, never framed, no inline scripts."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STAFF_PREFIX = "/staff"
STATIC_PREFIX = "/staff/static/"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PAGE_HEADERS = {
    "Cache-Control": "no-store",  # a shared prison PC must not show the last person's pages
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
STATIC_HEADERS = {
    "Cache-Control": "public, max-age=3600",  # quick on an old PC; the CSS rarely changes
    "X-Content-Type-Options": "nosniff",
}


class StaffSecurityHeaders:
    """Add the staff headers to every response under /staff (pages and static files)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != STAFF_PREFIX and not path.startswith(f"{STAFF_PREFIX}/"):
            await self.app(scope, receive, send)
            return
        extra = STATIC_HEADERS if path.startswith(STATIC_PREFIX) else PAGE_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)

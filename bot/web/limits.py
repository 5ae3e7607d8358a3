"""Refuse over-large request bodies with 413 before anything reads them into memory."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

# Paths allowed a larger body, and how large: the staff feeds page takes file uploads.
LARGE_PATHS = (("/staff/feeds", 5 * 1024 * 1024),)
TOO_LARGE = b"Request body too large.\n"


class BodyTooLarge(Exception):
    """The body went past the limit while it was being read."""


def limit_for(path: str, default: int) -> int:
    """Return the largest body accepted on this path."""
    for prefix, limit in LARGE_PATHS:
        if path == prefix or path.startswith(prefix + "/"):
            return max(limit, default)
    return default


def _declared_length(scope: dict[str, Any]) -> int | None:
    """Return Content-Length, -1 if it is unreadable, None if absent."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 20 else -1
    return None


class BodySizeLimit:
    """ASGI middleware: 413 for a declared or streamed body over the path's limit.

    A declared Content-Length over the limit is refused before a byte is read; a chunked
    body is counted as it arrives and refused the moment it passes the limit, so no more
    than the limit is ever held.
    """

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Pass the request on with a counting receive, or answer 413."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope.get("path", ""), self.max_bytes)
        declared = _declared_length(scope)
        if declared is not None and (declared < 0 or declared > limit):
            await _refuse(scope, send, 413 if declared > limit else 400)
            return
        seen = 0
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal seen
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def watching_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(scope, send, 413)


async def _refuse(scope: dict[str, Any], send: Any, status: int) -> None:
    logger.warning("refused %s %s: body over the limit or unreadable length (%s)",
                   scope.get("method"), scope.get("path"), status)
    body = TOO_LARGE if status == 413 else b"Bad Content-Length.\n"
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})

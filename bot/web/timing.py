"""Time provider webhooks, from the request arriving to the last byte of our answer."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Histogram


class WebhookTimer:
    """ASGI middleware: observe each webhook request's latency in a histogram, by route.

    Pure ASGI (Starlette's BaseHTTPMiddleware would wrap every request in extra tasks). Only
    the given paths are timed, and the route label is the path itself: these routes have no
    path parameters, so the labels are as few as the routes.
    """

    def __init__(self, app: Any, *, histogram: Histogram, routes: frozenset[str]) -> None:
        self.app = app
        self.histogram = histogram
        self.routes = routes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Pass the request on, timing it if it is for a webhook."""
        route = scope.get("path", "") if scope["type"] == "http" else ""
        if route not in self.routes:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        timed = False

        async def send_timed(message: dict[str, Any]) -> None:
            nonlocal timed
            await send(message)
            last = message["type"] == "http.response.body" and not message.get("more_body")
            if last and not timed:
                timed = True
                self.histogram.labels(route=route).observe(time.perf_counter() - started)

        try:
            await self.app(scope, receive, send_timed)
        finally:
            if not timed:  # it failed before answering: still a request the provider waited on
                self.histogram.labels(route=route).observe(time.perf_counter() - started)

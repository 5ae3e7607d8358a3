"""A loopback fake SMS provider that records every send, and a sender that talks to it."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from scheduler.errors import TransientSendError
from scheduler.sender import OutgoingMessage, SendResult


class FakeProviderServer:
    """Serve POST /messages (record and accept) and GET /messages?ref= (look one up)."""

    def __init__(self) -> None:
        self.sends: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.watermark = 0  # `reached` is set once this many sends are recorded
        self.reached = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like a real provider
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per answer
            wbufsize = 65536  # headers and body leave in one write

            def log_message(self, *args: Any) -> None:
                return

            def _json(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                size = int(self.headers.get("Content-Length", "0"))
                try:
                    payload = json.loads(self.rfile.read(size))
                except (ValueError, ConnectionError):
                    self.close_connection = True  # the client died mid-request
                    return
                with outer.lock:
                    outer.sends[int(payload["ref"])] += 1
                    if outer.watermark and sum(outer.sends.values()) >= outer.watermark:
                        outer.reached.set()
                self._json(201, {"sid": f"SM{payload['ref']}"})

            def do_GET(self) -> None:  # noqa: N802
                ref = int(parse_qs(urlparse(self.path).query).get("ref", ["0"])[0])
                with outer.lock:
                    found = outer.sends.get(ref, 0)
                if found:
                    self._json(200, {"sid": f"SM{ref}"})
                else:
                    self._json(404, {"error": "not found"})

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # a burst of concurrent sends must not be refused
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Return the base URL."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def total(self) -> int:
        """Return how many sends were recorded."""
        with self.lock:
            return sum(self.sends.values())

    def __enter__(self) -> FakeProviderServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class HttpSender:
    """Sends to the fake provider over HTTP; can look a message up after a crash."""

    def __init__(self, base_url: str, channel: str = "sms") -> None:
        self.channel = channel
        self.client = httpx.AsyncClient(base_url=base_url, timeout=5.0)

    async def send(self, message: OutgoingMessage) -> SendResult:
        """POST the message; a connection problem is transient."""
        try:
            r = await self.client.post("/messages", json={
                "ref": message.id, "to": message.address, "body": message.body})
        except httpx.TransportError as exc:
            raise TransientSendError(f"transport: {type(exc).__name__}") from None
        if r.status_code >= 500:
            raise TransientSendError(f"provider {r.status_code}")
        return SendResult(provider_id=r.json()["sid"], segments=1)

    async def lookup(self, message: OutgoingMessage) -> SendResult | None:
        """Ask the provider whether it has our message."""
        r = await self.client.get("/messages", params={"ref": message.id})
        if r.status_code == 404:
            return None
        return SendResult(provider_id=r.json()["sid"], segments=1)

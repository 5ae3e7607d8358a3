"""The fake Twilio REST API on a loopback port, for tests that run real processes.

`RecordingTwilio` is `tests.fakes.twilio_api.FakeTwilio` that also notes when each create
arrived (monotonic seconds, the To number and the segments), and can hold its answers: once
`hold_after` creates have arrived, later creates are recorded (so a lookup finds them) but
not answered until the test releases them. `TwilioServer` serves it with uvicorn on a
thread of the test process, so the test reads what it recorded directly.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

import uvicorn
from starlette.requests import Request
from starlette.responses import Response

from tests.fakes.twilio_api import FakeTwilio, count_segments

HOLD_LIMIT = 10.0  # seconds a held answer waits at most, so a failed test never hangs


@dataclass
class Arrival:
    """One Messages create as the fake saw it."""

    at: float  # time.monotonic() in the test process
    to: str
    segments: int


@dataclass
class RecordingTwilio(FakeTwilio):
    """The fake Twilio, noting the arrival time of every create."""

    arrivals: list[Arrival] = field(default_factory=list)
    hold_after: int = 0  # 0: never hold; else hold answers from this many creates on
    unanswered: int = 0  # creates recorded but not answered yet (held or answer_delay)
    reached: threading.Event = field(default_factory=threading.Event)
    open: threading.Event = field(default_factory=threading.Event)  # cleared while holding

    def __post_init__(self) -> None:
        self.open.set()

    async def _create(self, request: Request) -> Response:
        form = await request.form()  # Starlette keeps it: the fake reads the same form
        body = form.get("Body")
        to = form.get("To")
        self.arrivals.append(Arrival(time.monotonic(), to if isinstance(to, str) else "",
                                     count_segments(body if isinstance(body, str) else "")))
        if self.hold_after and len(self.arrivals) >= self.hold_after and not self.reached.is_set():
            self.open.clear()
            self.reached.set()
        self.unanswered += 1
        try:
            response = await super()._create(request)
            if not self.open.is_set():
                await asyncio.to_thread(self.open.wait, HOLD_LIMIT)
        finally:
            self.unanswered -= 1
        return response

    def release(self) -> None:
        """Answer the held creates."""
        self.open.set()

    def sends_to(self) -> dict[str, int]:
        """Return how many creates each number got."""
        counts: dict[str, int] = {}
        for arrival in list(self.arrivals):
            counts[arrival.to] = counts.get(arrival.to, 0) + 1
        return counts

    def sid_of(self) -> dict[str, str]:
        """Return the sid of the (last) message created for each number."""
        return {m["to"]: m["sid"] for m in list(self.messages)}


class TwilioServer:
    """Serve a RecordingTwilio on 127.0.0.1 (a free port) on a thread until closed."""

    def __init__(self, twilio: RecordingTwilio) -> None:
        self.twilio = twilio
        config = uvicorn.Config(twilio.app, host="127.0.0.1", port=0, log_level="warning",
                                lifespan="off", ws="none", access_log=False,
                                timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="fake-twilio", daemon=True)

    @property
    def url(self) -> str:
        """Return the base URL, as TWILIO_API_BASE_URL."""
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __enter__(self) -> TwilioServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake Twilio server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.twilio.release()
        self.server.force_exit = True  # do not wait for answers held or delayed
        self.server.should_exit = True
        self.thread.join(10)

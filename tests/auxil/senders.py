"""Senders for tests: record what the dispatcher hands over, as a provider would see it."""

from __future__ import annotations

from scheduler.clock import SimClock
from scheduler.ratelimit import ChannelLimit, RateLimiter
from scheduler.sender import OutgoingMessage, SendResult


def instant_limiter() -> RateLimiter:
    """Return a limiter on a simulated clock that never makes a test wait or drift."""
    fast = ChannelLimit(per_second=10_000.0)
    return RateLimiter(limits={"sms": fast, "telegram": fast}, clock=SimClock())


class RecordingSender:
    """A Sender that accepts every message and keeps it in `sent`."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[OutgoingMessage] = []

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Accept one message and remember it."""
        self.sent.append(message)
        return SendResult(provider_id=f"rec-{self.channel}-{len(self.sent)}", segments=1)

    def bodies(self) -> list[str]:
        """Return the bodies sent so far."""
        return [m.body for m in self.sent]

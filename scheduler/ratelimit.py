"""Per-channel and per-chat send rates (GCRA virtual scheduling), counted in segments for SMS."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scheduler.clock import Clock, RealClock

GSM7 = set(
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5\u0394_\u03a6"
    "\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\u00c6\u00e6\u00df\u00c9 !\"#\u00a4%&'()*+,"
    "-./0123456789:;<=>?\u00a1ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7\u00bf"
    "abcdefghijklmnopqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0"
)
GSM7_EXT = set("^{}\\[~]|\u20ac")


def estimate_segments(text: str) -> int:
    """Estimate how many SMS segments a text takes (GSM-7 160/153, else UCS-2 70/67)."""
    if all(c in GSM7 or c in GSM7_EXT for c in text):
        units = len(text) + sum(1 for c in text if c in GSM7_EXT)
        return 1 if units <= 160 else math.ceil(units / 153)
    units = sum(2 if ord(c) > 0xFFFF else 1 for c in text)
    return 1 if units <= 70 else math.ceil(units / 67)


@dataclass
class Gcra:
    """One rate: `rate` units a second with a burst of `burst` units, no more."""

    rate: float
    burst: float = 1.0
    tat: float = 0.0  # theoretical arrival time of the next unit

    def wait_for(self, now: float, cost: float = 1.0) -> float:
        """Return seconds to wait before `cost` units may go (0 means now)."""
        interval = 1.0 / self.rate
        # A message dearer than the burst waits until its whole cost fits: no window overflows.
        allowed_at = self.tat + cost * interval - self.burst * interval
        wait = allowed_at - now
        return wait if wait > 1e-9 else 0.0  # float dust must not spin the caller

    def take(self, now: float, cost: float = 1.0) -> None:
        """Spend `cost` units at `now` (call only when wait_for said 0)."""
        self.tat = max(self.tat, now) + cost / self.rate


BURST_FRACTION = 0.05  # slack for a late wake-up, paid for by running a little under the limit


def channel_bucket(limit: float) -> Gcra:
    """Return a bucket that never sends more than `limit` units in any one-second window.

    GCRA with rate r and burst b allows at most r + b - 1 units in a second, so a burst of
    5% (for timer jitter: a late wake-up is caught up, not lost) is paid for with r = limit -
    b + 1.
    """
    burst = max(1.0, limit * BURST_FRACTION)
    return Gcra(rate=max(limit - burst + 1.0, limit * 0.5), burst=burst)


@dataclass
class ChannelLimit:
    """How fast one channel may send."""

    per_second: float  # messages a second overall (SMS: segments a second)
    per_chat_per_second: float | None = None  # Telegram: about one a second in one chat
    chat_burst: float = 3.0  # a short reply of up to 3 messages goes at once
    count_segments: bool = False


DEFAULT_LIMITS = {
    "telegram": ChannelLimit(per_second=30.0, per_chat_per_second=1.0),
    "sms": ChannelLimit(per_second=1.0, count_segments=True),
}


@dataclass
class RateLimiter:
    """Keeps every channel within its limit; shared by all dispatch passes in one process."""

    limits: dict[str, ChannelLimit] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    clock: Clock = field(default_factory=RealClock)
    _channel: dict[str, Gcra] = field(default_factory=dict)
    _chat: dict[tuple[str, str], Gcra] = field(default_factory=dict)
    _paused_until: dict[str, float] = field(default_factory=dict)

    def cost(self, channel: str, body: str, segments: int | None = None) -> float:
        """Return how many units a message spends on its channel."""
        limit = self.limits.get(channel)
        if limit is None or not limit.count_segments:
            return 1.0
        return float(segments or estimate_segments(body))

    def chat_wait(self, channel: str, address: str) -> float:
        """Return seconds until this chat may get another message."""
        limit = self.limits.get(channel)
        if limit is None or limit.per_chat_per_second is None:
            return 0.0
        bucket = self._chat.get((channel, address))
        if bucket is None:
            return 0.0
        return bucket.wait_for(self.clock.monotonic())  # 0.0 when free

    def paused_for(self, channel: str) -> float:
        """Return seconds the channel stays paused (after retry_after or an outage)."""
        left = self._paused_until.get(channel, 0.0) - self.clock.monotonic()
        return left if left > 1e-9 else 0.0

    def pause(self, channel: str, seconds: float) -> None:
        """Send nothing on `channel` for `seconds`."""
        until = self.clock.monotonic() + seconds
        self._paused_until[channel] = max(self._paused_until.get(channel, 0.0), until)

    async def acquire(self, channel: str, address: str, cost: float) -> None:
        """Wait until the channel (and chat) may send `cost` units, then spend them."""
        limit = self.limits.get(channel)
        if limit is None:
            return
        bucket = self._channel.get(channel)
        if bucket is None:
            bucket = self._channel[channel] = channel_bucket(limit.per_second)
        while True:
            now = self.clock.monotonic()
            wait = max(bucket.wait_for(now, cost), self.paused_for(channel))
            if wait <= 0:
                break
            await self.clock.sleep(wait)
        bucket.take(self.clock.monotonic(), cost)
        if limit.per_chat_per_second is not None:
            chat = self._chat.setdefault(
                (channel, address), Gcra(rate=limit.per_chat_per_second, burst=limit.chat_burst)
            )
            chat.take(self.clock.monotonic())
            if len(self._chat) > 50_000:  # forget idle chats so memory stays small
                now = self.clock.monotonic()
                self._chat = {k: v for k, v in self._chat.items() if v.tat > now}

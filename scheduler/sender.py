"""The small interface the dispatcher sends through; `bot` provides the implementations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from storage.models import OutboundMessage


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to send, as the sender sees it."""

    id: int
    channel: str
    address: str
    body: str
    choices: tuple[tuple[str, str], ...] = ()
    request_location: bool = False
    kind: str = "reply"
    claimed_at: datetime | None = None  # when this try began: a lookup searches from here
    language: str = "en"  # the reader's: buttons the sender adds (share location) use it

    @classmethod
    def from_row(cls, row: OutboundMessage) -> OutgoingMessage:
        """Build from an outbox row."""
        return cls(
            id=row.id or 0,
            channel=row.channel,
            address=row.address,
            body=row.body,
            choices=tuple((c[0], c[1]) for c in (row.choices or [])),
            request_location=row.request_location,
            kind=str(row.kind),
            claimed_at=row.claimed_at,
            language=str((row.meta or {}).get("language") or "en"),
        )


@dataclass(frozen=True)
class SendResult:
    """What the provider said when it accepted a message."""

    provider_id: str | None = None
    segments: int | None = None
    delivered: bool = False  # True when acceptance already means delivery (console, log)


class Sender(Protocol):
    """Sends one message on one channel; raises TransientSendError or PermanentSendError."""

    channel: str

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Send one message."""
        ...

    def cost(self, message: OutgoingMessage) -> float:
        """Return what this message spends of the channel's rate (SMS: its segments)."""
        ...


class Reconciler(Protocol):
    """A sender that can also say whether the provider already has one of our messages.

    Optional: after a worker crash, a row that was handed to the provider but never marked
    sent is looked up instead of guessed about, which makes that row exactly-once.
    """

    async def lookup(self, message: OutgoingMessage) -> SendResult | None:
        """Return the provider's record of this outbox message, or None if it never arrived."""
        ...

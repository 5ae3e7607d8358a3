"""What flows through the engine: an inbound message in, replies out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Inbound:
    """One message from a person, already authenticated and deduplicated by its adapter."""

    channel: str  # "sms", "telegram" or "console"
    address: str  # E.164 number or Telegram chat id
    text: str = ""
    received_at: datetime | None = None
    provider_id: str | None = None  # MessageSid or update_id, for dedupe
    location: tuple[float, float] | None = None  # (lat, lon) shared on Telegram
    payload: str | None = None  # button callback data
    display_name: str | None = None  # Telegram first name, never stored unless linked


@dataclass(frozen=True)
class Choice:
    """One option: a button on Telegram, a number or keyword on SMS."""

    label: str
    payload: str  # what comes back when chosen; also accepted typed


@dataclass(frozen=True)
class Reply:
    """What the service says; each channel renders it its own way."""

    text: str
    choices: tuple[Choice, ...] = ()
    request_location: bool = False
    urgent: bool = False  # crisis numbers: never deferred, sent first


@dataclass(frozen=True)
class EngineContext:
    """What the engine needs from the outside, passed in so tests control it."""

    now: datetime
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/London"))
    link_code_days: int = 60  # a link code expires this many days after release
    meetings_per_page: int = 3
    public_base_url: str = "http://127.0.0.1:8000"

"""Process-wide metrics the dispatcher updates as it sends; the web app shows them at /metrics.

The objects are made once per process and belong to no registry until one asks: each web app
keeps a registry of its own (tests build many apps), and `register` adds these to it. Labels
are a channel and a provider's error code, each checked for shape and the codes capped in
number, so no address, name or message can ever become a label and the series stay few.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter

from scheduler.errors import PermanentSendError, SendError, TransientSendError

MAX_CODES = 50  # distinct error codes one process labels; any after that are "other"
OTHER = "other"
NONE = "none"  # the provider said no without a code (a network failure, an odd answer)
_CODE = re.compile(r"[0-9]{1,6}|[a-z_]{1,16}")  # Twilio's codes, HTTP statuses, "chat_id"
_CHANNEL = re.compile(r"[a-z_]{1,20}")
_codes: set[str] = set()

PROVIDER_ERRORS = Counter(
    "throughcare_provider_errors",
    "Errors providers answered to this process's sends, by channel and error code, since it "
    "started (status callbacks and other processes' sends are not counted here).",
    ("channel", "code"),
    registry=None,
)


def code_label(code: str | None) -> str:
    """Return the label for a provider's error code: itself if short and plain, else bucketed."""
    if not code:
        return NONE
    if not _CODE.fullmatch(code):
        return OTHER
    if code not in _codes:
        if len(_codes) >= MAX_CODES:
            return OTHER
        _codes.add(code)
    return code


def channel_label(channel: str) -> str:
    """Return the label for a channel name (ours: sms, telegram, whatsapp, voice)."""
    return channel if _CHANNEL.fullmatch(channel) else OTHER


def count_send_error(channel: str, error: SendError) -> None:
    """Count a provider's refusal of a send; waiting (SendLater) is not an error."""
    if isinstance(error, PermanentSendError | TransientSendError):
        PROVIDER_ERRORS.labels(channel=channel_label(channel),
                               code=code_label(error.code)).inc()


def register(registry: CollectorRegistry) -> None:
    """Add the process-wide metrics to an app's registry."""
    registry.register(PROVIDER_ERRORS)

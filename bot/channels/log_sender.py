"""Senders that never leave the machine: the console (chat CLI) and the labelled log sender."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

from bot.channels.render import render_console, render_sms, sms_segments
from scheduler.sender import OutgoingMessage, SendResult

logger = logging.getLogger(__name__)
_ids = itertools.count(1)


def _cost(message: OutgoingMessage) -> float:
    """Return the segments of an SMS as it would be sent, or one for any other channel."""
    if message.channel == "sms":
        return float(sms_segments(render_sms(message.body, message.choices)))
    return 1.0


@dataclass
class ConsoleSender:
    """Collect what a person would see, rendered for their channel (the chat CLI)."""

    channel: str
    outbox: list[str] = field(default_factory=list)

    def cost(self, message: OutgoingMessage) -> float:
        """Return what the message would cost on its channel (SMS: segments)."""
        return _cost(message)

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Render and keep the message."""
        self.outbox.append(render_console(message.channel, message.body,
                                          message.choices, message.request_location))
        return SendResult(provider_id=f"console-{next(_ids)}", delivered=True)


@dataclass
class LogSender:
    """Stand-in for a channel with no credentials: the message is stored and logged, not sent."""

    channel: str

    def cost(self, message: OutgoingMessage) -> float:
        """Return what the message would cost on its channel (SMS: segments)."""
        return _cost(message)

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Log that the message would have been sent (the body is not logged)."""
        segments = sms_segments(render_sms(message.body, message.choices)) \
            if message.channel == "sms" else None
        logger.warning(
            "NOT SENT (no %s credentials; local log sender): outbox #%s, %s chars",
            message.channel, message.id, len(message.body),
        )
        return SendResult(provider_id=f"log-{next(_ids)}", segments=segments, delivered=True)

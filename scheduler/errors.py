"""Sending errors, raised by channel senders and understood by the dispatcher.

SendError
 +-- SendLater             not now, and not a failure (a WhatsApp message waiting for its
 |                         window): put back untried, due in `seconds`; no retry counted
 +-- TransientSendError    try again later (rate limit, provider outage); may carry retry_after;
 |                         `maybe_sent` when the request may have reached the provider (a timeout
 |                         after sending), so the dispatcher looks it up before sending it again
 +-- PermanentSendError    never retry; may say what became of the identity
"""

from __future__ import annotations


class SendError(Exception):
    """Base class for send failures."""

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class TransientSendError(SendError):
    """The send may work later; `retry_after` seconds if the provider said so."""

    def __init__(
        self,
        reason: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(reason, code=code)
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent  # the provider may have it: look it up before a retry


class PermanentSendError(SendError):
    """The send will never work; `identity_status` is blocked, unreachable or opted_out."""

    def __init__(
        self, reason: str, *, code: str | None = None, identity_status: str | None = None
    ) -> None:
        super().__init__(reason, code=code)
        self.identity_status = identity_status


class SendLater(SendError):
    """Not sent and not failed: the channel cannot take it yet; look again in `seconds`."""

    def __init__(self, reason: str, *, seconds: float, code: str | None = None) -> None:
        super().__init__(reason, code=code)
        self.seconds = seconds

"""Sending errors, raised by channel senders and understood by the dispatcher.

SendError
 +-- TransientSendError    try again later (rate limit, provider outage); may carry retry_after
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
        self, reason: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(reason, code=code)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """The send will never work; `identity_status` is blocked, unreachable or opted_out."""

    def __init__(
        self, reason: str, *, code: str | None = None, identity_status: str | None = None
    ) -> None:
        super().__init__(reason, code=code)
        self.identity_status = identity_status

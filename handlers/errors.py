"""Conversation errors.

HandlerError
 +-- BadInput        the person's message cannot be used here; reply with a short usage hint
"""


class HandlerError(Exception):
    """Base class for conversation errors."""


class BadInput(HandlerError):
    """The message cannot be used in this step; `reply_key` names the hint to send."""

    def __init__(self, reply_key: str, **values: object) -> None:
        super().__init__(reply_key)
        self.reply_key = reply_key
        self.values = values

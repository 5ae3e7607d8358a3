"""Write texts for one person: their language, and discreet wording for what we start."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from handlers.channels import traits
from handlers.texts import Reader, reading_as
from storage.models import Participant


def is_discreet(participant: Participant, channel: str) -> bool:
    """Return whether texts we start to this person must be discreet (their choice, else
    the channel's default: on for SMS)."""
    if participant.discreet is not None:
        return participant.discreet
    return traits(channel).discreet_default


@contextmanager
def writing_to(participant: Participant, channel: str, *, started: bool = True
               ) -> Iterator[Reader]:
    """Write every t() inside in this person's language; discreet if `started` (a reminder,
    sequence step, change notice or check-in we send unasked) and they want it so.
    Replies to what they sent are never discreet: they asked."""
    discreet = started and is_discreet(participant, channel)
    with reading_as(participant.language, discreet=discreet) as reader:
        yield reader

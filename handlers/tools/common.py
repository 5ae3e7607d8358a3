"""Small helpers the tools share: ratings, SKIP and BACK, buttons that only Telegram shows."""

from __future__ import annotations

import re

from handlers.channels import traits
from handlers.conversation import Conversation
from handlers.texts import t
from handlers.types import Choice, Reply

SKIP_WORDS = frozenset({"SKIP", "PASS", "S", "NEXT"})  # NEXT: on to the next question
BACK_WORDS = frozenset({"BACK", "B", "PREVIOUS", "PREV"})
_NUMBER = re.compile(r"(?<![\d.\-])(\d{1,2})(?![\d.])")
_WORDS = {"ZERO": 0, "NONE": 0, "ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5,
          "SIX": 6, "SEVEN": 7, "EIGHT": 8, "NINE": 9, "TEN": 10}
NOTE_MAX = 300  # longest free-text answer kept


def parse_rating(text: str) -> int | None:
    """Read a 0-10 rating from "7", "7/10", "about 7" or "seven"; None if there is none."""
    word = text.strip().upper().rstrip(".!")
    if word in _WORDS:
        return _WORDS[word]
    match = _NUMBER.search(text)
    if match is None or len(text) > 40:
        return None
    value = int(match.group(1))
    return value if 0 <= value <= 10 else None


def bare(text: str) -> str:
    """Return the message as one upper-case word, punctuation dropped."""
    return re.sub(r"[^A-Za-z0-9_]", "", text).upper()


def is_skip(text: str) -> bool:
    """Say whether the person asked to skip this question."""
    return bare(text) in SKIP_WORDS


def is_back(text: str) -> bool:
    """Say whether the person asked to go back one question."""
    return bare(text) in BACK_WORDS


def rating_choices(conv: Conversation) -> tuple[Choice, ...]:
    """Return 0-10 buttons on Telegram; SMS users type the number.

    Ordered 1..10 then 0, so a typed number picks the button with that number.
    """
    if not traits(conv.channel).buttons:
        return ()
    return tuple(Choice(str(n), str(n)) for n in [*range(1, 11), 0])


def telegram_only(conv: Conversation, *choices: Choice) -> tuple[Choice, ...]:
    """Return buttons for Telegram; on SMS the text itself names the keywords."""
    return choices if traits(conv.channel).buttons else ()


def ask_rating(conv: Conversation, key: str, **values: object) -> Reply:
    """Ask a 0-10 question."""
    return Reply(t(key, **values), choices=rating_choices(conv))


def short(text: str | None, limit: int) -> str:
    """Trim a person's own words for showing back to them, at a space where there is one."""
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 2]  # one more than fits, to see whether a word ends there
    cut = cut.rsplit(" ", 1)[0] if " " in cut else cut[:-1]
    return cut.rstrip(" ,;:.-") + "..."

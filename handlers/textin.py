"""Clean what people send before anything reads it."""

from __future__ import annotations

import re
import unicodedata

MAX_LEN = 1000  # longer messages get a polite "too long" reply
_SPACE = re.compile(r"\s+")
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
)
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})


def clean(text: str | None) -> str:
    """Normalise Unicode, turn control characters into spaces, and collapse white space."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    return _SPACE.sub(" ", text).strip()


def command_word(text: str) -> tuple[str, str]:
    """Split into an upper-case first word (Telegram `/cmd@bot` allowed) and the rest."""
    head, _, rest = text.partition(" ")
    head = head.lstrip("/").split("@", 1)[0].strip(".!?,;:").upper()
    return head, rest.strip()


def bare_word(text: str) -> str:
    """Return the whole message as one upper-case word without punctuation."""
    return re.sub(r"[^A-Za-z]", "", text).upper() if len(text) <= 20 else ""

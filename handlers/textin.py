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
# Whole messages that clearly mean STOP. Kept to a list, because "stop wasting money" in a
# cost-benefit answer must not end someone's support.
STOP_PHRASES = frozenset({
    "STOP NOW", "STOP IT", "STOP PLEASE", "PLEASE STOP", "STOP TEXTING", "STOP TEXTING ME",
    "STOP MESSAGING", "STOP MESSAGING ME", "STOP SENDING", "STOP SENDING ME MESSAGES",
    "STOP SENDING MESSAGES", "STOP MESSAGES", "STOP ALL", "STOP THIS", "UNSUBSCRIBE ME",
    "STOP CONTACTING ME", "NO MORE MESSAGES", "STOP TEXTS", "STOP THE TEXTS",
})


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


def is_stop(text: str) -> bool:
    """Say whether a whole message asks to stop all messages."""
    if bare_word(text) in STOP_WORDS:
        return True
    words = re.findall(r"[A-Za-z]+", text.upper()) if len(text) <= 40 else []
    return " ".join(words) in STOP_PHRASES

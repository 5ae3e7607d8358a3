"""Clean what people send before anything reads it, and plain what is sent back by SMS."""

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
    "STOP", "STOPALL", "UNSUBSCRIBE", "OPTOUT",
    "STOP IT", "STOP TEXTING", "STOP TEXTING ME", "STOP TEXT", "STOP TEXTS", "STOP THE TEXTS",
    "STOP TXT", "STOP TXTS", "STOP TXTING ME", "STOP MESSAGING", "STOP MESSAGING ME",
    "STOP MESSAGES", "STOP MSGS", "STOP SENDING", "STOP SENDING ME MESSAGES",
    "STOP SENDING MESSAGES", "STOP SENDING ME TEXTS", "STOP SENDING TEXTS", "STOP ALL",
    "STOP THIS", "STOP CONTACTING ME", "UNSUBSCRIBE ME", "NO MORE MESSAGES", "NO MORE TEXTS",
    "LEAVE ME ALONE", "DONT TEXT ME", "DO NOT TEXT ME", "DONT MESSAGE ME", "DO NOT MESSAGE ME",
    "DONT CONTACT ME", "DO NOT CONTACT ME", "TAKE ME OFF YOUR LIST", "REMOVE ME",
})
# Polite words around a STOP phrase: "please stop texting me", "leave me alone now thanks".
# CANCEL, END and QUIT are STOP only as the whole message: "just quit" may be about drink.
_POLITE_HEAD = ("PLEASE", "PLS", "PLZ", "JUST", "OK", "OKAY", "CAN YOU", "COULD YOU",
                "WOULD YOU", "WILL YOU", "CAN U")
_POLITE_TAIL = ("PLEASE", "PLS", "PLZ", "NOW", "THANKS", "THANK YOU", "THX", "TA", "MATE",
                "ANYMORE", "ANY MORE")
STOP_PHRASE_MAX = 60  # longer messages are about something else
_LATIN = re.compile(r"LATIN (CAPITAL|SMALL) LETTER (?:SHARP |DOTLESS )?([A-Z]{1,2})\b")


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
    if len(text) > STOP_PHRASE_MAX:
        return False
    words = re.findall(r"[A-Z]+", text.upper().replace("'", "").replace("\u2019", ""))
    return _without_polite_words(" ".join(words)) in STOP_PHRASES


def _without_polite_words(phrase: str) -> str:
    changed = True
    while changed and phrase:
        changed = False
        for head in _POLITE_HEAD:
            if phrase.startswith(head + " "):
                phrase, changed = phrase[len(head) + 1:], True
        for tail in _POLITE_TAIL:
            if phrase.endswith(" " + tail):
                phrase, changed = phrase[: -len(tail) - 1], True
    return phrase


def is_start(text: str) -> bool:
    """Say whether a message is START, or Telegram's `/start` with or without a payload."""
    if bare_word(text) in START_WORDS:
        return True
    return text.startswith("/") and command_word(text)[0] == "START"


def plain_letters(text: str) -> str:
    """Spell a name or a person's own words in plain letters: "Łódź 👍" becomes "Lodz".

    For SMS, where one letter outside GSM-7 makes the whole text dearer UCS-2. Accents come
    off (NFKD), other Latin letters are read from their Unicode names (Ł is "L WITH
    STROKE"), emoji and symbols are dropped, and anything else becomes "?". The result is
    printable ASCII, which GSM-7 holds, so no character table is kept here.
    """
    plain = "".join(_plain_char(ch) for ch in unicodedata.normalize("NFKD", text))
    plain = _SPACE.sub(" ", re.sub(r"\?{2,}", "?", plain))
    return re.sub(r" ([!?.,;:])", r"\1", plain).strip()


def _plain_char(ch: str) -> str:
    if " " <= ch <= "~":
        return "'" if ch == "`" else ch  # the backquote alone is not in GSM-7
    category = unicodedata.category(ch)
    name = unicodedata.name(ch, "")
    if category in ("Pi", "Pf"):
        return '"' if "DOUBLE" in name else "'"
    if category == "Pd":
        return "-"
    if category[0] in "ZC":
        return " "
    if category == "Nd":
        return str(unicodedata.decimal(ch))
    if category[0] in "MSP":  # accents NFKD split off, emoji, symbols, odd punctuation
        return "/" if "SLASH" in name else ""
    latin = _LATIN.match(name)
    if latin is None:
        return "?"
    return latin.group(2) if latin.group(1) == "CAPITAL" else latin.group(2).lower()

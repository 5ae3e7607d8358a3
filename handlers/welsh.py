"""Welsh words people send, read as the English keywords the handlers know.

One table, so handlers stay in one language: `CYFARFODYDD CF10 1AA` reaches MEETINGS, `IE`
answers a YES question, `HEPGOR` skips a step. Chosen words are short, everyday Welsh
(DEWISLEN is the usual word for an on-screen menu; BWYDLEN, the cafe menu, works too).
STOP stays STOP, as the networks require; STOPIO and STOPIWCH mean it too. Letters are
compared without accents ("nôl" is NOL), since phones type either.

CYMRAEG / ENGLISH (and WELSH / SAESNEG) choose the language at any time. A first message
from an unknown sender is answered in Welsh if it opens with a Welsh greeting or CYMRAEG.
"""

from __future__ import annotations

import re
import unicodedata

# First word of a message -> the English keyword.
KEYWORDS_CY: dict[str, str] = {
    "CYFARFODYDD": "MEETINGS", "CYFARFOD": "MEETINGS", "CWRDD": "MEETINGS",
    "DEWISLEN": "MENU", "BWYDLEN": "MENU", "HAFAN": "MENU",
    "CYMORTH": "HELP",
    "YSFA": "URGE", "CHWANT": "URGE",
    "HWYLIAU": "CHECKIN", "GWIRIO": "CHECKIN",
    "CYNLLUN": "PLAN", "FYNGHYNLLUN": "PLAN",
    "RHESYMAU": "MYREASONS", "PWYSO": "CBA",
    "DILEU": "DELETE", "DATA": "MYDATA", "FYNATA": "MYDATA",
    "ARLEIN": "ONLINE", "MWY": "MORE",
    "CADW": "SAVE", "TYNNU": "UNSAVE", "MANYLION": "INFO",
    "ES": "WENT", "ESI": "WENT", "COLLAIS": "MISSED", "COLLI": "MISSED",
    "DIMCWRDD": "NORUN", "ATGOFFA": "REMIND", "CYSYLLTU": "LINK", "CYNNIL": "DISCREET",
}
# A whole message -> the English word. Always: the words flows take for themselves.
WORDS_CY: dict[str, str] = {
    "HEPGOR": "SKIP", "NESAF": "NEXT", "CYNT": "BACK", "NOL": "BACK", "YNOL": "BACK",
    "ARHOS": "SURF", "WEDILLEDDFU": "EASED", "GWELL": "BETTER",
    "DECHRAU": "START", "AILDDECHRAU": "START",
    "STOPIO": "STOP", "STOPIWCH": "STOP", "DIMMWYONEGESEUON": "STOP",
    "PEIDIWCHAGANFON": "STOP", "STOPIWCHYNEGESEUON": "STOP", "DADDANYSGRIFIO": "STOP",
    "DIMCWRDD": "NORUN", "DIMCYFARFOD": "NORUN", "ESI": "WENT", "COLLAISI": "MISSED",
}
# Only outside a step that takes the person's own words: there "Ie" is their answer.
ANSWERS_CY: dict[str, str] = {
    "IE": "YES", "YDY": "YES", "YDW": "YES", "OES": "YES", "CYTUNO": "YES",
    "IAWN": "OK",  # "all right": consent takes it, as OK; DELETE wants a plain yes
    "NA": "NO", "NAGE": "NO", "NAC": "NO", "NACYDY": "NO", "NACOES": "NO",
}
# Words after a keyword: ATGOFFA DAU, CYFARFODYDD YFORY.
ARGS_CY: dict[str, dict[str, str]] = {
    "REMIND": {"DYDD": "DAY", "DIWRNOD": "DAY", "AWR": "HOUR", "DAU": "BOTH", "DDAU": "BOTH",
               "DIM": "OFF", "DIFFODD": "OFF", "YMLAEN": "ON"},
    "DISCREET": {"YMLAEN": "ON", "DIFFODD": "OFF"},
    "WHATSAPP": {"AROS": "WAIT", "TESTUN": "SMS"},
    "MEETINGS": {"HEDDIW": "TODAY", "HENO": "TONIGHT", "YFORY": "TOMORROW",
                 "LLUN": "MONDAY", "MAWRTH": "TUESDAY", "MERCHER": "WEDNESDAY",
                 "IAU": "THURSDAY", "GWENER": "FRIDAY", "SADWRN": "SATURDAY", "SUL": "SUNDAY"},
}
LANGUAGE_WORDS = {"CYMRAEG": "cy", "WELSH": "cy", "ENGLISH": "en", "SAESNEG": "en"}
GREETINGS_CY = frozenset({"HELO", "SHWMAE", "SMAE", "SUMAE", "SHUMAI", "BOREDA", "PNAWNDA",
                          "NOSWAITHDDA", "DIOLCH", "CYMRAEG", "HYLO", "SUT", "SUDACHI",
                          "SUTMAE", "HAIA"})
_LETTERS = re.compile(r"[^A-Z0-9]")


def fold(word: str) -> str:
    """Upper-case a word, accents off and anything but letters and digits dropped."""
    plain = unicodedata.normalize("NFKD", word)
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return _LETTERS.sub("", plain.upper())


def language_asked(text: str) -> str | None:
    """Return "cy" or "en" if the whole message chooses a language, else None."""
    return LANGUAGE_WORDS.get(fold(text)) if len(text) <= 20 else None


def looks_welsh(text: str) -> bool:
    """Say whether a first message opens in Welsh ("Shwmae", "Helo", "Bore da", CYMRAEG)."""
    words = text.split()
    if not words:
        return False
    return fold(words[0]) in GREETINGS_CY or fold(" ".join(words[:2])) in GREETINGS_CY


def to_english(text: str, *, own_words: bool = False) -> str:
    """Read a Welsh keyword, answer or argument as its English twin; else return `text`.

    In a step that takes the person's own words (`own_words`), only a keyword or a flow
    word sent on its own is read, so a sentence that starts with "Cadw" is kept as written.
    """
    whole = fold(text) if len(text) <= 40 else ""
    if whole in WORDS_CY:
        return WORDS_CY[whole]
    if not own_words and whole in ANSWERS_CY:
        return ANSWERS_CY[whole]
    head, _, rest = text.partition(" ")
    word = fold(head.lstrip("/").split("@", 1)[0])
    keyword = KEYWORDS_CY.get(word, word if word in ARGS_CY else None)  # REMIND DYDD too
    if keyword is None or (own_words and rest.strip()):
        return text
    args = ARGS_CY.get(keyword, {})
    rest = " ".join(args.get(fold(w), w) for w in rest.split())
    return f"{keyword} {rest}".strip()

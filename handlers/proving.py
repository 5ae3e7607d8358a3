"""Linking an enrolled number without a code: the person proves it is them first.

A number can be recycled or mistyped at enrolment, so the first text from an enrolled
number learns nothing personal: it is asked for the code on the release card, or the
person's first name and the month they were released ("Sam November", "sam 11"). Wrong
answers count with wrong codes toward the per-sender limit.
"""

from __future__ import annotations

import re

from handlers.textin import plain_letters
from storage.models import Participant

MONTHS = {
    # English, short and long; Welsh (Ionawr ... Rhagfyr) for #14's Welsh readers.
    **{name: n for n, name in enumerate(
        ("january", "february", "march", "april", "may", "june", "july", "august",
         "september", "october", "november", "december"), start=1)},
    **{name: n for n, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1)},
    "sept": 9,
    **{name: n for n, name in enumerate(
        ("ionawr", "chwefror", "mawrth", "ebrill", "mai", "mehefin", "gorffennaf", "awst",
         "medi", "hydref", "tachwedd", "rhagfyr"), start=1)},
}
_WORD = re.compile(r"[a-z]+|\d+")
# Whole tokens for "does this try to prove?": a card code such as "AB3DE-MAY7K" holds the
# letters MAY but names no month, and must reach the code check (a flaky CI run found it).
_TOKEN = re.compile(r"[a-z0-9]+")
MAX_PROOF = 80  # characters: a name and a month, not a letter


def _fold(text: str) -> str:
    return plain_letters(text).casefold()


def proves_identity(text: str, participant: Participant) -> bool:
    """Say whether a message gives this person's first name and release month."""
    if len(text) > MAX_PROOF:
        return False
    words = _WORD.findall(_fold(text))
    first = _WORD.findall(_fold(participant.display_name))
    if not first or first[0] not in words:
        return False
    month = participant.release_date.month
    rest = [w for w in words if w != first[0]]
    return any(MONTHS.get(w) == month or (w.isdigit() and int(w) == month) for w in rest)


def looks_like_proof(text: str) -> bool:
    """Say whether a short message names a month (an attempt to prove, right or wrong)."""
    if len(text) > MAX_PROOF:
        return False
    tokens = _TOKEN.findall(_fold(text))
    return len(tokens) >= 2 and any(w in MONTHS for w in tokens)

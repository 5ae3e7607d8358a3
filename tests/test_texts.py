"""Every participant-facing text is plain English, fits an SMS budget, and is really used.

Readability is Flesch reading ease: 206.835 - 1.015 * words/sentence - 84.6 * syllables/word.
Syllables are counted the way textstat falls back to without its CMU dictionary (pyphen),
taking the larger of that and a vowel-group count, so hard words are not under-scored.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pyphen
import pytest

from bot.channels.render import is_gsm7, sms_segments
from handlers.texts import TextError, all_texts, placeholders, t

ROOT = Path(__file__).resolve().parents[1]
MIN_READING_EASE = 70.0
MIN_WORDS_TO_SCORE = 8  # below this one long word swings the score by 30 points: noise
MAX_SEGMENTS = 3
# Sample values, long enough to be realistic, for filling the gaps.
SAMPLES = {
    "name": "Samantha", "query": "Newcastle-under-Lyme", "suggestions": "Stoke or Stone",
    "place": "ST3 2QH", "when": "Tomorrow 3 Dec 10:30am", "where": ", Hanley Library",
    "n": "3", "miles": "1.2", "day": "Wednesday", "before": "8", "after": "3", "days": "14",
    "old": "It calms me down and helps me sleep when things get on top of me", "answer":
    "Money, my health, my kids and my mates who do not use", "goals":
    "Stay clean; Get a flat", "sessions": "3", "goal": "10", "hours": "4.5",
    "hours_goal": "20", "release": "12 Nov 2026", "area": "ST3 2QH",
}
# For readability, gaps get short plain stand-ins: the formula should judge our words, not
# a person's name or a meeting's address.
PLAIN_SAMPLES = {"name": "Sam", "place": "", "query": "Hull", "where": "Hull", "when": "at 7",
                 "meeting": "the group", "time": "7pm", "what": "visit"}
_WORD = re.compile(r"[A-Za-z0-9']+")
_VOWELS = re.compile(r"[aeiouy]+")


@cache
def _dictionary() -> pyphen.Pyphen:
    return pyphen.Pyphen(lang="en_GB")


def syllables(word: str) -> int:
    """Estimate the syllables in one word."""
    word = word.lower().strip("'")
    if not word or word.isdigit():
        return 1
    groups = len(_VOWELS.findall(word))
    if word.endswith("e") and not word.endswith(("le", "ee", "ye")) and groups > 1:
        groups -= 1
    return max(1, groups, len(_dictionary().positions(word)) + 1)


def reading_ease(text: str) -> float:
    """Return the Flesch reading ease of a text."""
    sentences = [s for s in re.split(r"[.!?:;\n]+", text) if _WORD.search(s)]
    words = _WORD.findall(text)
    syl = sum(syllables(w) for w in words)
    return 206.835 - 1.015 * len(words) / max(1, len(sentences)) - 84.6 * syl / len(words)


def filled(key: str, *, plain: bool = False) -> str:
    """Return the text with every gap filled with a sample value (or a plain stand-in)."""
    names = placeholders(all_texts()[key])
    if plain:
        return t(key, **{n: PLAIN_SAMPLES.get(n, "5") for n in names})
    return t(key, **{n: SAMPLES.get(n, "sample words") for n in names})


KEYS = sorted(all_texts())


def test_there_are_texts() -> None:
    assert len(KEYS) > 100


@pytest.mark.parametrize("key", KEYS)
def test_text_is_plain_english(key: str) -> None:
    text = filled(key, plain=True)
    if len(_WORD.findall(text)) < MIN_WORDS_TO_SCORE:
        return
    assert reading_ease(text) >= MIN_READING_EASE, f"{key}: {reading_ease(text):.0f}: {text}"


@pytest.mark.parametrize("key", KEYS)
def test_text_is_gsm7_and_within_budget(key: str) -> None:
    text = filled(key)
    assert is_gsm7(text), f"{key} has characters outside GSM-7: {text!r}"
    assert sms_segments(text) <= MAX_SEGMENTS, f"{key} takes {sms_segments(text)} segments"


@pytest.mark.parametrize("key", KEYS)
def test_no_gap_left_unfilled(key: str) -> None:
    text = filled(key)
    assert "{" not in text and "}" not in text, f"{key}: {text}"
    if placeholders(all_texts()[key]):
        with pytest.raises(TextError):
            t(key)


def test_the_readability_check_can_fail() -> None:
    hard = ("Notwithstanding considerable institutional complexities, participants' "
            "rehabilitative trajectories necessitate individualised intervention.")
    assert reading_ease(hard) < MIN_READING_EASE
    assert reading_ease("You can do this. Send a text when you want to talk.") > 90


_CALL = re.compile(r"""\bt\(\s*(f?)(["'])([^"']+)\2""")


def _calls() -> list[tuple[str, str, bool]]:
    found = []
    for package in ("handlers", "bot", "scheduler"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for match in _CALL.finditer(path.read_text(encoding="utf-8")):
                found.append((f"{path.relative_to(ROOT)}", match.group(3), bool(match.group(1))))
    return found


def test_every_key_used_in_code_exists() -> None:
    calls = _calls()
    assert len(calls) > 50
    keys = set(KEYS)
    missing = []
    for where, key, is_f in calls:
        if is_f:
            prefix = key.split("{", 1)[0]
            if not any(k.startswith(prefix) for k in keys):
                missing.append(f"{where}: {key}")
        elif key not in keys:
            missing.append(f"{where}: {key}")
    assert missing == []

"""Every English text has a Welsh twin, with the same gaps, plain enough and within budget.

A missing translation fails here, not in front of a participant (at run time `t()` falls
back to English). Readability: Flesch reading ease is tuned to English syllables and word
lengths, and no Welsh adaptation of it is in settled use, so Welsh texts are held to what
the "Cymraeg Clir" plain-Welsh guidance (Canolfan Bedwyr, Bangor University) asks for:
short sentences and everyday, short words. Measured here as average words per sentence,
average letters per word, and the share of long words (over 12 letters: "cyfarfodydd" is
11 and common; "gwasanaethau" is 12).
"""

from __future__ import annotations

import re

import pytest

from bot.channels.render import is_gsm7, sms_segments
from handlers.texts import all_texts, placeholders, reading_as, t

MAX_SEGMENTS = 3
MAX_WORDS_PER_SENTENCE = 16.0
MAX_LETTERS_PER_WORD = 5.6
MAX_LONG_WORD_SHARE = 0.08
LONG_WORD = 12
MIN_WORDS_TO_SCORE = 8
TELEGRAM_ONLY = ("telegram.", "staff_bot.", "meetings.ask_place_telegram",
                 "meetings.share_location")  # and the voice line, which is heard
SAMPLES = {
    "name": "Gwenllian", "query": "Llanfairpwllgwyngyll", "suggestions": "Llandudno neu Conwy",
    "place": "CF10 1AA", "when": "Yfory 3 Rhag 10:30yb", "where": ", Llyfrgell Caerdydd",
    "n": "3", "miles": "1.2", "day": "dydd Mercher", "before": "8", "after": "3",
    "days": "14", "old": "Mae'n fy nhawelu ac yn fy helpu i gysgu pan mae pethau'n drwm",
    "answer": "Arian, fy iechyd, fy mhlant a fy ffrindiau sydd ddim yn defnyddio",
    "goals": "Aros yn lan; Cael fflat", "sessions": "3", "goal": "10", "hours": "4.5",
    "hours_goal": "20", "release": "12 Tach 2026", "area": "CF10 1AA",
}
PLAIN = {"name": "Sam", "place": "", "query": "Bala", "where": "Bala", "when": "am 7",
         "meeting": "y grwp", "time": "7yh", "what": "apwyntiad"}
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")
EN, CY = all_texts("en"), all_texts("cy")
KEYS = sorted(EN)


def welsh(key: str, samples: dict[str, str], default: str) -> str:
    """Return the Welsh text for `key` with its gaps filled."""
    with reading_as("cy"):
        return t(key, **{n: samples.get(n, default) for n in placeholders(CY[key])})


def plain_measures(text: str) -> tuple[float, float, float]:
    """Return words per sentence, letters per word, and the share of long words."""
    sentences = [s for s in re.split(r"[.!?:;\n]+", text) if _WORD.search(s)]
    words = _WORD.findall(text)
    letters = [len(w.replace("'", "")) for w in words]
    return (len(words) / max(1, len(sentences)), sum(letters) / len(words),
            sum(n > LONG_WORD for n in letters) / len(words))


def test_every_english_text_has_a_welsh_twin() -> None:
    assert sorted(set(EN) - set(CY)) == []
    assert sorted(set(CY) - set(EN)) == []  # a Welsh text nobody uses is a stale one


@pytest.mark.parametrize("key", KEYS)
def test_welsh_twin_has_the_same_gaps(key: str) -> None:
    assert placeholders(CY.get(key, "")) == placeholders(EN[key]), key


@pytest.mark.parametrize("key", KEYS)
def test_welsh_text_fits_the_sms_budget(key: str) -> None:
    text = welsh(key, SAMPLES, "geiriau sampl")
    assert sms_segments(text) <= MAX_SEGMENTS, f"{key}: {sms_segments(text)} segments"
    spoken = key.startswith("voice.") and not key.startswith("voice.sms_")
    if not key.startswith(TELEGRAM_ONLY) and not spoken:
        assert is_gsm7(text), f"{key} would go UCS-2: {text!r}"


@pytest.mark.parametrize("key", KEYS)
def test_welsh_text_is_plain(key: str) -> None:
    text = welsh(key, PLAIN, "5")
    if len(_WORD.findall(text)) < MIN_WORDS_TO_SCORE:
        return
    per_sentence, per_word, long_share = plain_measures(text)
    assert per_sentence <= MAX_WORDS_PER_SENTENCE, f"{key}: {per_sentence:.1f} words: {text}"
    assert per_word <= MAX_LETTERS_PER_WORD, f"{key}: {per_word:.2f} letters: {text}"
    assert long_share <= MAX_LONG_WORD_SHARE, f"{key}: {long_share:.0%} long words: {text}"


def test_the_plain_welsh_check_can_fail() -> None:
    hard = ("Oherwydd cymhlethdodau sefydliadol sylweddol, mae trywyddau adsefydlu "
            "cyfranogwyr yn gofyn am ymyriadau unigoledig a chydgysylltiedig ar draws "
            "gwasanaethau cyhoeddus amrywiol ledled Cymru.")
    per_sentence, per_word, long_share = plain_measures(hard)
    assert per_sentence > MAX_WORDS_PER_SENTENCE or per_word > MAX_LETTERS_PER_WORD
    assert long_share > MAX_LONG_WORD_SHARE
    easy = plain_measures("Gallwch chi wneud hyn. Anfonwch neges pan fyddwch eisiau siarad.")
    assert easy[0] <= MAX_WORDS_PER_SENTENCE and easy[1] <= MAX_LETTERS_PER_WORD


def test_a_missing_welsh_text_falls_back_to_english_for_the_reader() -> None:
    with reading_as("cy"):
        assert t("menu.title") == CY["menu.title"] != EN["menu.title"]

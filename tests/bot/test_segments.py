"""SMS segment counting: an escape pair or a surrogate pair never straddles two segments."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.render import GSM7_BASIC, GSM7_EXT, is_gsm7, render_sms, sms_segments
from tests.fakes.twilio_api import count_segments as twilio_segments

EMOJI = "\U0001f600"  # outside the BMP: a surrogate pair, two UTF-16 units
CYRILLIC = "ж"  # not GSM-7: forces UCS-2 but is one unit


@pytest.mark.parametrize(("text", "segments"), [
    ("", 1),
    ("a" * 160, 1),
    ("a" * 161, 2),
    ("a" * 306, 2),
    ("a" * 307, 3),
    ("€" * 80, 1),  # 160 septets: still a single message
    ("€" * 80 + "a", 2),
    ("a" * 152 + "€", 1),  # 154 septets fit a single message
    ("a" * 159 + "€", 2),  # 161 septets
])
def test_gsm7_limits(text: str, segments: int) -> None:
    assert is_gsm7(text)
    assert sms_segments(text) == segments


def test_escape_at_position_153_moves_to_the_next_segment() -> None:
    # 306 septets would fit two segments, but the € would straddle the first boundary.
    text = "a" * 152 + "€" + "a" * 152
    assert sum(2 if ch in GSM7_EXT else 1 for ch in text) == 306
    assert sms_segments(text) == 3
    assert sms_segments("a" * 151 + "€" + "a" * 153) == 2  # ends exactly on the boundary


def test_every_extension_character_costs_two_septets() -> None:
    for ch in GSM7_EXT:
        assert sms_segments(ch * 80) == 1 and sms_segments(ch * 81) == 2, repr(ch)


@pytest.mark.parametrize(("text", "segments"), [
    (CYRILLIC * 70, 1),
    (CYRILLIC * 71, 2),
    (CYRILLIC * 134, 2),
    (CYRILLIC * 135, 3),
    (EMOJI * 35, 1),  # 70 units
    (EMOJI * 36, 2),  # 33 emoji (66 units) a segment
    (EMOJI * 66, 2),
    (EMOJI * 67, 3),  # 134 units, but pairs cannot be split
])
def test_ucs2_limits(text: str, segments: int) -> None:
    assert not is_gsm7(text)
    assert sms_segments(text) == segments


def test_emoji_straddling_unit_67_moves_to_the_next_segment() -> None:
    text = CYRILLIC * 66 + EMOJI + CYRILLIC * 66  # 134 units: 66 | emoji + 65 | 1
    assert sms_segments(text) == 3
    assert sms_segments(CYRILLIC * 65 + EMOJI + CYRILLIC * 67) == 2  # pair ends at unit 67


def test_one_emoji_makes_the_whole_text_ucs2() -> None:
    assert sms_segments("a" * 70) == 1
    assert sms_segments("a" * 69 + EMOJI) == 2  # 71 units


def test_rendered_choices_are_counted() -> None:
    body = "a" * 150
    assert sms_segments(body) == 1
    assert sms_segments(render_sms(body, (("Yes", "YES"), ("No", "NO")))) == 2


GSM_TEXT = st.text(alphabet=st.sampled_from(GSM7_BASIC + GSM7_EXT), max_size=700)
ANY_TEXT = st.text(alphabet=st.sampled_from(GSM7_BASIC + GSM7_EXT + CYRILLIC + EMOJI),
                   max_size=400)


@given(GSM_TEXT)
def test_gsm7_never_fewer_than_plain_division(text: str) -> None:
    septets = sum(2 if ch in GSM7_EXT else 1 for ch in text)
    if septets <= 160:
        assert sms_segments(text) == 1
    else:  # a segment loses at most one septet to an escape pair moved on
        assert math.ceil(septets / 153) <= sms_segments(text) <= math.ceil(septets / 152)


@given(ANY_TEXT, ANY_TEXT)
def test_a_longer_text_never_takes_fewer_segments(head: str, tail: str) -> None:
    assert sms_segments(head + tail) >= sms_segments(head)


@given(ANY_TEXT)
def test_the_fake_twilio_counts_as_we_do(text: str) -> None:
    assert twilio_segments(text) == sms_segments(text)

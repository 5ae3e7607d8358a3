"""Offline geocoding: messy postcodes, fallbacks, towns, and hostile input."""

from __future__ import annotations

import pytest
from geopy.distance import geodesic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meeting_finder.errors import MeetingFinderError, PlaceNotFound
from meeting_finder.geocode import looks_like_postcode, normalise_postcode, resolve_place

ST3_2 = (52.9856, -2.1495)  # centroid of the ST3 2 sector, near UKSR's office


@pytest.mark.parametrize("text", ["st32qh", " ST3  2QH ", "ST3 2QH", "st3-2qh", "St3\t2qH"])
def test_normalise_postcode_accepts_messy_forms(text: str) -> None:
    assert normalise_postcode(text) == "ST3 2QH"


@pytest.mark.parametrize("text", ["ST3", "hello", "", "ST3 2", "12345", "ST3 2QHX"])
def test_normalise_postcode_refuses_partial_or_junk(text: str) -> None:
    assert normalise_postcode(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("ST3 2QH", True), ("st3", True), ("ST3 2", True), ("SW1A", True), ("Stoke", False),
     ("", False), ("ST3 2Q", False)],
)
def test_looks_like_postcode(text: str, expected: bool) -> None:
    assert looks_like_postcode(text) is expected


def test_known_full_postcode_resolves_exactly() -> None:
    place = resolve_place("st32qa")
    assert place.precision == "postcode"
    assert place.label == "ST3 2QA"
    assert place.note is None
    assert geodesic((place.lat, place.lon), ST3_2).miles < 1


@pytest.mark.parametrize("text", ["ST3 2QH", "st32qh", " ST3  2QH "])
def test_missing_postcode_falls_back_to_sector_and_says_so(text: str) -> None:
    place = resolve_place(text)
    assert place.precision == "sector"
    assert place.label == "ST3 2"
    assert place.note is not None and "ST3 2QH" in place.note and "ST3 2" in place.note
    assert geodesic((place.lat, place.lon), ST3_2).miles < 0.2


def test_missing_sector_falls_back_to_outward() -> None:
    place = resolve_place("ST3 8ZZ")
    assert place.precision == "outward"
    assert place.label == "ST3"
    assert place.note is not None and "ST3" in place.note


def test_outward_code_and_sector() -> None:
    assert resolve_place("st3").precision == "outward"
    assert resolve_place("ST3 2").precision == "sector"


@pytest.mark.parametrize("text", ["Stoke-on-Trent", "stoke", "Stoke on Trent", "STOKE ON TRENT"])
def test_town_names_resolve_to_stoke(text: str) -> None:
    place = resolve_place(text)
    assert place.precision == "town"
    assert place.label == "Stoke-on-Trent"
    assert geodesic((place.lat, place.lon), ST3_2).miles < 5


def test_latlon() -> None:
    place = resolve_place(" 52.98, -2.14 ")
    assert (place.lat, place.lon, place.precision) == (52.98, -2.14, "latlon")


def test_ambiguous_town_suggests_how_to_tell_apart() -> None:
    with pytest.raises(PlaceNotFound) as caught:
        resolve_place("Richmond")
    suggestions = caught.value.suggestions
    assert 2 <= len(suggestions) <= 3
    # Each suggestion can be sent back as it is and resolves to a different place.
    places = {resolve_place(s).lat for s in suggestions}
    assert len(places) == len(suggestions)


def test_misspelt_town_gets_did_you_mean() -> None:
    with pytest.raises(PlaceNotFound) as caught:
        resolve_place("Manchestr")
    assert caught.value.suggestions[0] == "Manchester"
    assert len(caught.value.suggestions) == len(set(caught.value.suggestions)) <= 3


def test_unknown_place() -> None:
    with pytest.raises(PlaceNotFound) as caught:
        resolve_place("Xyzzyville")
    assert "postcode" in str(caught.value)


def test_unknown_district_suggests_real_ones() -> None:
    with pytest.raises(PlaceNotFound) as caught:
        resolve_place("ST99")
    assert caught.value.suggestions and all(s.startswith("ST") for s in caught.value.suggestions)


def test_northern_ireland_postcode_falls_back_to_its_town() -> None:
    place = resolve_place("bt1 1aa")
    assert place.label == "Belfast"
    assert place.precision == "town"
    assert place.note is not None and "Northern Ireland" in place.note
    assert resolve_place("BT48").label == "Derry"


def test_unknown_northern_ireland_district_asks_for_a_town() -> None:
    with pytest.raises(PlaceNotFound) as caught:
        resolve_place("BT99 9ZZ")
    assert "town" in str(caught.value)
    assert "Belfast" in caught.value.suggestions


@pytest.mark.parametrize(
    "text",
    ["", "   ", "a" * 5000, "🙂🙂🙂", "\x00\x01\x02", "'; DROP TABLE meeting;--", "ST3\x002QH",
     "<script>alert(1)</script>", "999,999", "nan,nan", "\u202e\u200b", "1e308,1e308"],
)
def test_hostile_input_only_raises_place_not_found(text: str) -> None:
    try:
        resolve_place(text)
    except PlaceNotFound:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_any_text_resolves_or_raises_place_not_found(text: str) -> None:
    try:
        place = resolve_place(text)
    except PlaceNotFound as exc:
        assert isinstance(exc, MeetingFinderError)
        assert len(exc.suggestions) <= 3
    else:
        assert -90 <= place.lat <= 90 and -180 <= place.lon <= 180


def test_repeat_lookups_are_fast() -> None:
    import time

    resolve_place("ST3 2QA")
    resolve_place("Leeds")
    started = time.perf_counter()
    for _ in range(200):
        resolve_place("ST3 2QA")
        resolve_place("Leeds")
    assert (time.perf_counter() - started) / 400 < 0.005

"""Feed fidelity: plain text, approximate addresses, every listed field, real dial-ins."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from meeting_finder.feeds.csv_feed import import_csv
from meeting_finder.feeds.importer import import_meeting_guide
from meeting_finder.feeds.meeting_guide import parse_row
from meeting_finder.feeds.meeting_guide_export import export_meeting_guide, to_meeting_guide
from meeting_finder.offerable import offerable_in_person
from meeting_finder.search import find_nearest
from storage.models.meetings import Meeting
from tests.meeting_finder import mg_reader
from tests.meeting_finder.conftest import NOW, ST3_2, feeds_dir, make_meeting

ALANON = "tsml_ui_alanon_ma_attendance.json"
EDA = "tsml_ui_eda_international.json"
MARIN = "tsml_ui_aasfmarin_timezone_field.json"
KANSAS = "spec_kansas_city_data_sample.json"
NEW_YORK = "America/New_York"


def feed_rows(name: str) -> list[dict[str, Any]]:
    return json.loads((feeds_dir() / name).read_text(encoding="utf-8"))


async def imported(session: AsyncSession, name: str, zone: str | None) -> dict[str, Meeting]:
    summary = await import_meeting_guide(
        session, feed_rows(name), now=NOW, source_name=name, default_tz=zone
    )
    assert summary.skipped == []
    rows = await session.exec(select(Meeting).where(Meeting.source == name))
    return {m.slug: m for m in rows}


def only(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    [row] = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    return row


async def test_html_is_stripped_and_entities_decoded(session: AsyncSession) -> None:
    rows = feed_rows(ALANON)
    encoded = [r for r in rows if "&amp;" in (r.get("notes") or "") + (r.get("location_notes")
                                                                        or "")]
    assert len(encoded) == 18
    meetings = await imported(session, ALANON, NEW_YORK)
    for row in encoded:
        m = meetings[row["slug"]]
        assert "&amp;" not in (m.notes or "") + (m.location_notes or "")
    stop = only(rows, location_notes="Stop &amp; Shop-upstairs")
    assert meetings[stop["slug"]].location_notes == "Stop & Shop-upstairs"
    [fields] = parse_row({
        "slug": "s", "name": "<b>Stoke</b> Twice Weekly", "day": 1, "time": "19:00",
        "location": "St&nbsp;John&#8217;s Hall", "notes": "<p>Ring the bell.</p>Side door<br>"
        "Room 2", "types": ["<i>SMART</i>"], "formatted_address": "1 High St &amp; Market Sq"})
    assert fields["name"] == "Stoke Twice Weekly"
    assert fields["venue"] == "St John’s Hall"
    assert fields["notes"] == "Ring the bell.\nSide door\nRoom 2"
    assert fields["types"] == ["SMART"] and fields["address"] == "1 High St & Market Sq"
    [plain] = parse_row({"slug": "p", "name": "AT&T <3 a < b", "day": 1})
    assert plain["name"] == "AT&T <3 a < b"  # text that only looks like HTML is left alone


async def test_approximate_addresses_are_kept_for_online_meetings(session: AsyncSession) -> None:
    rows = feed_rows(EDA)
    approximate = {r["slug"] for r in rows if r["approximate"] == "yes"}
    assert len(approximate) == 101
    meetings = await imported(session, EDA, NEW_YORK)
    for slug in approximate:
        m = meetings[slug]
        assert m.approximate and m.address and not offerable_in_person(m)
    london = only(rows, slug=next(s for s in approximate if "London, UK" ==
                                  only(rows, slug=s)["formatted_address"]))
    assert meetings[london["slug"]].address == "London, UK"
    assert Counter((meetings[s].attendance, meetings[s].status) for s in approximate) == {
        ("online", "active"): 100, ("in_person", "suspended"): 1}
    # Not somewhere to go, however close: only the 70 exact in-person addresses are.
    found = await find_nearest(session, lat=51.5, lon=-0.12, now=NOW, limit=200)
    assert all(not h.meeting.approximate for h in found.hits)
    exported = {r["slug"]: r for r in export_meeting_guide(list(meetings.values()))}
    assert {s for s, r in exported.items() if r.get("approximate") == "yes"} == approximate


async def test_town_only_rows_are_approximate_not_hybrid(session: AsyncSession) -> None:
    rows = feed_rows(MARIN)
    town_only = {r["slug"] for r in rows if not r["address"] and r["city"]}
    assert len(town_only) == 514  # "Marin", "San Francisco", "San Francisco area"
    meetings = await imported(session, MARIN, None)
    marin = meetings["marin-city-fellowship-speaker-619"]
    assert (marin.address, marin.approximate) == ("Marin, CA, USA", True)
    kinds = Counter(meetings[s].attendance for s in town_only)
    assert kinds == {"online": 514}  # was hybrid: a town and a Zoom link is not a room


async def test_notes_group_district_and_contacts_are_carried(session: AsyncSession) -> None:
    marin = await imported(session, MARIN, None)
    m = marin["marin-city-fellowship-speaker-619"]
    assert m.conference_url_notes == "Zoom ID: 530851127\nPassword: 085392"
    assert m.conference_phone_notes is not None
    assert m.conference_phone_notes.startswith("Dial-in: (669) 900-9128\nEnter Meeting ID")
    rows = feed_rows(ALANON)
    alanon = await imported(session, ALANON, NEW_YORK)
    row = rows[5]
    a = alanon[row["slug"]]
    assert (a.group_name, a.district, a.location_notes) == (
        row["group"], row["district"], row["location_notes"])
    assert sum(m.group_name is not None for m in alanon.values()) == 360
    eda = await imported(session, EDA, NEW_YORK)
    with_email = [r for r in feed_rows(EDA) if r.get("email")]
    assert all(eda[r["slug"]].contact_email == r["email"] for r in with_email)
    [fields] = parse_row({"slug": "c", "name": "C", "day": 1, "contact_1_name": "Sam",
                          "contact_1_phone": "+44 7700 900123", "contact_1_email": "s@x.org",
                          "email": "group@x.org"})
    assert (fields["contact_name"], fields["contact_phone"], fields["contact_email"]) == (
        "Sam", "+44 7700 900123", "s@x.org")
    assert fields["contact"] == "Sam +44 7700 900123 s@x.org"
    row = to_meeting_guide(make_meeting(**{**fields, "slug": "c", "weekday": 0}))
    assert (row["contact_1_name"], row["contact_1_email"]) == ("Sam", "s@x.org")


async def test_invalid_dial_ins_are_dropped_and_dial_strings_kept(session: AsyncSession) -> None:
    rows = feed_rows(ALANON)
    broken = [r["slug"] for r in rows if r.get("conference_phone") == "+11"]
    assert len(broken) == 3
    meetings = await imported(session, ALANON, NEW_YORK)
    assert all(meetings[s].conference_phone is None for s in broken)
    kept = [r for r in rows if r.get("conference_phone") not in (None, "+11")]
    assert len(kept) == 170
    for row in kept:  # the same dial string, with spaces and dashes taken out
        assert meetings[row["slug"]].conference_phone == re.sub(r"[ -]", "",
                                                                 row["conference_phone"])
    assert sum(meetings[r["slug"]].conference_phone == r["conference_phone"] for r in kept) == 167
    assert meetings[rows[5]["slug"]].conference_phone == "+19292056099,,88538130466#,,,,,##"
    eda = await imported(session, EDA, NEW_YORK)
    raw = only(feed_rows(EDA), conference_phone="17207127995")
    assert eda[raw["slug"]].conference_phone == "+17207127995"  # the "+" it left out
    [us] = parse_row({"slug": "u", "name": "U", "day": 1, "country": "US",
                      "conference_phone": "(929) 205-6099 ;; 8424653#"})
    assert us["conference_phone"] == "+19292056099,,8424653#"
    [gone] = parse_row({"slug": "g", "name": "G", "day": 1, "conference_phone": "12345",
                        "conference_phone_notes": "PIN 1", "attendance_option": "online"})
    assert gone["conference_phone"] is None and gone["conference_phone_notes"] is None


async def test_csv_dial_in_without_country_is_british(session: AsyncSession) -> None:
    data = (b"slug,name,day,time,timezone,conference_url,conference_phone\n"
            b"o1,Online SMART,Monday,19:00,Europe/London,https://zoom.us/j/1,020 7946 0018\n")
    await import_csv(session, data, now=NOW, source_name="sheet")
    [m] = await session.exec(select(Meeting))
    assert m.conference_phone == "+442079460018"


async def test_exact_addresses_are_written_as_not_approximate(session: AsyncSession) -> None:
    meetings = await imported(session, KANSAS, "America/Chicago")
    exported = export_meeting_guide(list(meetings.values()))
    assert {r["approximate"] for r in exported} == {"no"}
    # Without "approximate", a reader takes a short address for a town: 39 read as inactive.
    assert mg_reader.read_feed(feed_rows(KANSAS), site_timezone="America/Chicago"
                               ).by_attendance() == {"inactive": 39, "in_person": 6}
    assert mg_reader.read_feed(exported).by_attendance() == {"in_person": 45}


def test_a_paused_meeting_is_exported_as_inactive() -> None:
    paused = make_meeting(status="suspended", attendance="hybrid", timezone="Europe/London",
                          conference_url="https://zoom.us/j/9", conference_phone="+442079460018")
    row = to_meeting_guide(paused)
    assert row["attendance_option"] == "inactive" and "TC" in row["types"]
    assert "conference_url" not in row and "conference_phone" not in row
    assert mg_reader.read_feed([row]).by_attendance() == {"inactive": 1}
    [fields] = parse_row(row)
    assert fields["status"] == "suspended"


async def test_search_offers_neither_a_town_nor_a_zoneless_meeting(session: AsyncSession) -> None:
    # Hand-made rows that an import would never write: the index must hold the line itself.
    session.add_all([
        make_meeting(slug="town", address="Longton", approximate=True),
        make_meeting(slug="zoneless", timezone=None),
        make_meeting(slug="room"),
    ])
    await session.commit()
    found = await find_nearest(session, lat=ST3_2[0], lon=ST3_2[1], now=NOW, limit=5)
    assert [h.meeting.slug for h in found.hits + found.online] == ["room"]

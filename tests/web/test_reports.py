"""Reports: each participant's engagement, the cohort's figures, the CSV, and who sees what.

The cohort (HMP Test; now is Thursday 26 Nov 2026, 12:00 UTC = London time):

| who | released | linked (by) | meetings went to | sessions | crisis flags |
| Ann | 1 Nov | 2 Nov 10:00 (34h, SMS) | 10, daily from 10 Nov 19:00 | 10 | 1 open (consent) |
| Ben | 2 Nov 07:00 | 8 Nov 09:00 (6d, Telegram) | 25 Nov 19:00 (day 23) | 1 | 1 (no consent) |
| Cat | 20 Nov | 21 Nov 08:00 (SMS) | 19 Nov 19:00 (before release) | 1 | - |
| Dan | 25 Nov | not linked | - | 0 | - |
| =Eve | 10 Dec | not linked | - | 0 | - |

Linked within 72 hours: of Ann, Ben, Cat (Dan's 72 hours are not over): Ann and Cat, 2 of 3.
At a meeting within 3 weeks: of Ann and Ben (released 21+ days ago): Ann, 1 of 2.
Median sessions of the four released (10, 1, 1, 0): 1. Reached 10: Ann, 1 of 4.
Ben's release time was recorded (07:00); the others count from 00:00 on the day.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import true
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.engine import handle_inbound
from handlers.types import EngineContext
from storage.audit_q import staff_actions_by, staff_actions_for
from storage.db import session_scope
from storage.models import AttendanceOutcome, AttendanceRecord, CrisisEvent, Participant, Prison
from storage.participants import enrol
from storage.reports_q import participant_facts
from tests.auxil.builders import make_inbound
from tests.auxil.tables import read_tables
from tests.auxil.web import read_page
from tests.web.conftest import StaffLogin

COHORT = "Figures for everyone released so far"
PEOPLE = "How each participant is getting on, most recent release first"


def at(day: int, hour: int, month: int = 11) -> datetime:
    """Return a moment in 2026 (UTC, which is London time in November)."""
    return datetime(2026, month, day, hour, tzinfo=UTC)


@dataclass
class Cohort:
    ids: dict[str, int]


async def person(session: AsyncSession, name: str, released: date, *, prison: str = "HMP Test",
                 link: tuple[str, str, datetime] | None = None, went: list[datetime] | None = None,
                 consent: bool = False, released_at: datetime | None = None) -> int:
    """Enrol someone, link them through the engine at a time, and record meetings they went to."""
    participant, code = await enrol(session, prison_name=prison, display_name=name,
                                    release_date=released, release_postcode=None,
                                    now=at(1, 9) - timedelta(days=30))
    assert participant.id is not None
    if link is not None:
        channel, address, when = link
        await handle_inbound(session, make_inbound(code, channel=channel, address=address,
                                                   received_at=when), EngineContext(now=when))
    for began in went or []:
        session.add(AttendanceRecord(participant_id=participant.id, meeting_id=None,
                                     occurrence_start=began, reported_at=began + timedelta(
                                         hours=3), outcome=AttendanceOutcome.ATTENDED, hours=1.5))
    participant.sessions_count = len(went or [])
    participant.hours_total = 1.5 * len(went or [])
    participant.staff_review_consent = consent
    participant.released_at = released_at
    session.add(participant)
    await session.flush()
    return participant.id


@pytest.fixture
async def cohort(engine: AsyncEngine) -> Cohort:
    """Build the cohort in the module docstring, and one person at another prison."""
    async with session_scope(engine) as s:
        ids = {
            "Ann": await person(s, "Ann Smith", date(2026, 11, 1), consent=True,
                                link=("sms", "+447700900101", at(2, 10)),
                                went=[at(10 + n, 19) for n in range(10)]),
            "Ben": await person(s, "Ben", date(2026, 11, 2), went=[at(25, 19)],
                                released_at=at(2, 7),
                                link=("telegram", "5550102", at(8, 9))),
            "Cat": await person(s, "Cat", date(2026, 11, 20), consent=True,
                                link=("sms", "+447700900103", at(21, 8)), went=[at(19, 19)]),
            "Dan": await person(s, "Dan", date(2026, 11, 25)),
            "=Eve": await person(s, "=Eve Jones", date(2026, 12, 10)),
            "Flo": await person(s, "Flo", date(2026, 11, 1), prison="HMP Elsewhere",
                                link=("sms", "+447700900106", at(1, 12)), went=[at(3, 19)]),
        }
        s.add(AttendanceRecord(participant_id=ids["Ben"], outcome=AttendanceOutcome.MISSED,
                               occurrence_start=at(10, 19), reported_at=at(10, 22)))
        for who in ("Ann", "Ben"):
            s.add(CrisisEvent(participant_id=ids[who], at=at(20, 23), channel="sms",
                              category="danger"))
        s.add(CrisisEvent(participant_id=ids["Ann"], at=at(12, 23), channel="sms",
                          category="danger", reviewed_at=at(13, 9)))
    return Cohort(ids)


async def test_a_champion_sees_each_person_and_the_cohort(
        client: httpx.AsyncClient, staff_login: StaffLogin, cohort: Cohort) -> None:
    await staff_login(client)
    response = await client.get("/staff/reports")
    page, tables = read_page(response.text), read_tables(response.text)
    assert page.h1 == "Reports" and page.links["Download as CSV"] == "/staff/reports.csv"
    figures = {row[0]: row[1] for row in tables[COHORT]}
    assert figures == {
        "Released so far": "4",
        "Linked within 72 hours of release": "2 of 3 (67%) Of those released at least "
                                             "72 hours ago.",
        "At a meeting within 3 weeks of release": "1 of 2 (50%) Of those released at least "
            "3 weeks ago. The NDTMS continuity-of-care measure: nationally, about half.",
        "Median sessions": "1",
        "Reached 10 sessions": "1 of 4 (25%)",
    }
    assert tables[PEOPLE] == [
        ["Name", "Released", "Linked", "Channel", "Last contact", "First meeting after release",
         "Hours from release to first meeting", "Sessions (of 10)", "Hours (of 20)",
         "Open crisis flags"],
        ["=Eve", "10 Dec 2026 (not yet)", "No", "", "", "", "", "0", "0", "Not shared"],
        ["Dan", "25 Nov 2026", "No", "", "", "", "", "0", "0", "Not shared"],
        ["Cat", "20 Nov 2026", "Yes", "SMS", "21 Nov 2026, 8:00am", "", "", "1", "1.5", "0"],
        ["Ben", "2 Nov 2026", "Yes", "Telegram", "8 Nov 2026, 9:00am", "25 Nov 2026, 7:00pm",
         "564", "1", "1.5", "Not shared"],
        ["Ann", "1 Nov 2026", "Yes", "SMS", "2 Nov 2026, 10:00am", "10 Nov 2026, 7:00pm", "235",
         "10", "15", "1"],
    ]
    assert page.links["Ann"] == f"/staff/participants/{cohort.ids['Ann']}"


async def test_the_csv_has_the_same_people_first_names_and_no_numbers(
        client: httpx.AsyncClient, staff_login: StaffLogin, cohort: Cohort) -> None:
    await staff_login(client)
    response = await client.get("/staff/reports.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="report-2026-11-26.csv"')
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["Participant", "First name", "Released", "Linked", "Channel",
                       "Last contact", "First meeting after release",
                       "Hours from release to first meeting", "Sessions (of 10)",
                       "Hours (of 20)", "Open crisis flags"]
    assert [r[1] for r in rows[1:]] == ["'=Eve", "Dan", "Cat", "Ben", "Ann"]
    assert rows[-1] == [str(cohort.ids["Ann"]), "Ann", "2026-11-01", "Yes", "SMS",
                        "2026-11-02 10:00", "2026-11-10 19:00", "235", "10", "15", "1"]
    assert "Flo" not in response.text and "Smith" not in response.text
    assert "+44" not in response.text and "07700" not in response.text


async def test_every_person_shown_or_downloaded_is_an_audited_read(
        client: httpx.AsyncClient, staff_login: StaffLogin, cohort: Cohort,
        engine: AsyncEngine) -> None:
    me = await staff_login(client)
    await client.get("/staff/reports")
    await client.get("/staff/reports.csv")
    async with session_scope(engine) as session:
        ann = [(e.action, e.detail) for e in await staff_actions_for(session, cohort.ids["Ann"])
               if e.actor == f"staff:{me.staff_id}"]
        flo = await staff_actions_for(session, cohort.ids["Flo"])
    assert ann == [("participant_read", {"page": "/staff/reports"}),
                   ("participant_read", {"page": "/staff/reports.csv"})]
    assert flo == []


async def test_an_admin_sees_every_prison(client: httpx.AsyncClient, staff_login: StaffLogin,
                                          cohort: Cohort) -> None:
    await staff_login(client, role="admin")
    tables = read_tables((await client.get("/staff/reports")).text)
    assert [row[0] for row in tables[PEOPLE][1:]] == ["=Eve", "Dan", "Cat", "Ben", "Ann", "Flo"]
    assert dict(tables[COHORT])["Released so far"] == "5"


async def test_a_coordinator_sees_only_their_regions_figures(
        client: httpx.AsyncClient, staff_login: StaffLogin, cohort: Cohort,
        engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        for prison in (await session.exec(select(Prison))).all():
            prison.region = "West Midlands" if prison.name == "HMP Test" else "Yorkshire"
            session.add(prison)
        for n in range(3):  # released into the region from a prison elsewhere
            pid = await person(session, f"Gus {n}", date(2026, 10, 1), prison="HMP Elsewhere",
                               went=[at(2, 19, month=10)])
            found = await session.get(Participant, pid)
            assert found is not None
            found.region = "west midlands"
    me = await staff_login(client, role="coordinator", region="West Midlands")
    response = await client.get("/staff/reports")
    page, tables = read_page(response.text), read_tables(response.text)
    assert "Download as CSV" not in page.links and PEOPLE not in tables
    for name in ("Ann", "Ben", "Cat", "Dan", "Eve", "Gus", "Flo"):
        assert name not in response.text
    figures = {row[0]: row[1] for row in tables[COHORT]}
    assert figures["Released so far"] == "7"
    assert figures["Linked within 72 hours of release"].startswith("2 of 6 (33%)")
    assert figures["At a meeting within 3 weeks of release"].startswith("4 of 5 (80%)")
    assert figures["Reached 10 sessions"] == "1 of 7 (14%)"
    assert figures["Median sessions"] == "1"
    assert (await client.get("/staff/reports.csv")).status_code == 403
    async with session_scope(engine) as session:
        audited = [(e.action, e.participant_id, e.detail)
                   for e in await staff_actions_by(session, me.staff_id)]
    assert audited[-1] == ("cohort_report", None, {"page": "/staff/reports", "people": 7})


async def test_a_coordinator_sees_no_figure_about_a_few_people(
        client: httpx.AsyncClient, staff_login: StaffLogin, cohort: Cohort,
        engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        prison = (await session.exec(select(Prison).where(Prison.name == "HMP Test"))).one()
        prison.region = "West Midlands"
        session.add(prison)
    await staff_login(client, role="coordinator", region="West Midlands")
    figures = dict(read_tables((await client.get("/staff/reports")).text)[COHORT])
    hidden = "Fewer than 5 people: not shown"
    assert figures["Released so far"] == "4"
    assert figures["Linked within 72 hours of release"].startswith(hidden)
    assert figures["Median sessions"] == hidden and figures["Reached 10 sessions"] == hidden


async def test_crisis_flags_are_not_even_read_without_consent(
        cohort: Cohort, engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        facts = await participant_facts(session, scope=true())
    flags = {f.participant_id: f.open_crises for f in facts}
    assert flags[cohort.ids["Ann"]] == 1 and flags[cohort.ids["Ben"]] == 0

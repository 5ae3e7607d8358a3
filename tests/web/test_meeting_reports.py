"""Meetings reported as not running: NORUN answers flag a meeting for its coordinator, who
confirms it runs or suspends it (its subscribers told once, with the nearest alternative).

Answers are rows written as the conversation engine writes them, except in the first test,
where two people really are asked "did you make it?" and reply NORUN.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from handlers.engine import handle_inbound
from handlers.types import EngineContext, Inbound
from scheduler.clock import SimClock
from scheduler.dispatcher import dispatch
from scheduler.planning import plan
from scheduler.ratelimit import RateLimiter
from storage.db import session_scope
from storage.models import (
    AttendanceOutcome,
    AttendanceRecord,
    AuditEvent,
    Meeting,
    MeetingStatus,
    OutboundMessage,
    OutboxStatus,
)
from storage.norun_q import norun_reports, stale_meetings
from storage.participants import enrol
from storage.subscriptions import subscribe
from tests.auxil.builders import enrolled_participant
from tests.auxil.web import read_page, submit
from tests.scheduler.conftest import FakeProvider
from tests.web.conftest import NOW, Clock, StaffLogin

PAGE = "/staff/reports/meetings"
FLAG = "May not be running"
HOME_SECTION = "Meetings that may not be running"
TUESDAY = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)  # 18:00 in London, two days before NOW
_ids = itertools.count(1)


async def add_meeting(engine: AsyncEngine, name: str = "Hanley SMART", *,
                      region: str = "Stoke", **values: Any) -> int:
    """Add an active weekly Tuesday 6pm meeting in a region; return its id."""
    fields: dict[str, Any] = {
        "slug": f"m{next(_ids)}", "name": name, "weekday": 1, "start_time": time(18),
        "end_time": time(19, 30), "timezone": "Europe/London", "region": region,
        "venue": "Hanley Library", "address": "Bethesda Street, Hanley",
        "postcode": "ST1 3RS", "lat": 53.0245, "lon": -2.1778}
    async with session_scope(engine) as session:
        meeting = Meeting(**{**fields, **values})
        session.add(meeting)
        await session.flush()
        assert meeting.id is not None
        return meeting.id


async def add_person(engine: AsyncEngine, name: str) -> int:
    """Enrol someone (not linked): enough to have said a meeting did not run."""
    async with session_scope(engine) as session:
        p, _ = await enrol(session, prison_name="HMP Test", display_name=name,
                           release_date=date(2026, 11, 1), release_postcode="ST3 2QH", now=NOW)
        assert p.id is not None
        return p.id


async def said_norun(engine: AsyncEngine, *, participant_id: int, meeting_id: int,
                     at: datetime, occurrence: datetime = TUESDAY) -> None:
    """Write a NORUN answer as the conversation engine does."""
    async with session_scope(engine) as session:
        session.add(AttendanceRecord(participant_id=participant_id, meeting_id=meeting_id,
                                     occurrence_start=occurrence, reported_at=at,
                                     outcome=AttendanceOutcome.NOT_RUNNING))


async def home_flags(client: httpx.AsyncClient) -> list[str]:
    """Return the meeting names under "Meetings that may not be running" on the home page."""
    html = (await client.get("/staff/")).text
    if HOME_SECTION not in html:
        return []
    section = html.split(HOME_SECTION, 1)[1].split("</ul>", 1)[0]
    return [text for text, href in read_page(section).links.items()
            if href.startswith(PAGE)]


async def report_page(client: httpx.AsyncClient) -> str:
    response = await client.get(PAGE)
    assert response.status_code == 200
    assert read_page(response.text).h1 == "Meetings reported as not running"
    return response.text


def section(html: str, name: str) -> str:
    """Return the part of the report page about one meeting."""
    assert f">{name}</h2>" in html, f"{name} is not listed"
    return html.split(f">{name}</h2>", 1)[1].split("</section>", 1)[0]


async def test_two_people_replying_norun_flag_the_meeting(
        engine: AsyncEngine, client: httpx.AsyncClient, staff_login: StaffLogin) -> None:
    meeting_id = await add_meeting(engine)
    phones = ("+447700900111", "+447700900222")
    async with session_scope(engine) as session:
        for name, phone in zip(("Alex", "Bea"), phones, strict=True):
            p = await enrolled_participant(session, address=phone, name=name)
            await subscribe(session, participant_id=p.id or 0, meeting_id=meeting_id, now=NOW)
    provider, limiter = FakeProvider("sms"), RateLimiter(clock=SimClock())
    await plan(engine, now=TUESDAY - timedelta(days=1))
    await dispatch(engine, {"sms": provider}, now=TUESDAY - timedelta(hours=1), limiter=limiter)
    await plan(engine, now=TUESDAY + timedelta(hours=2))
    morning = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    await dispatch(engine, {"sms": provider}, now=morning, limiter=limiter)
    asked = [m for _, m in provider.calls if m.body.startswith("Did you make it")]
    assert sorted(m.address for m in asked) == sorted(phones)
    for n, phone in enumerate(phones):
        async with session_scope(engine) as session:
            result = await handle_inbound(session, Inbound(
                channel="sms", address=phone, text="NORUN", provider_id=f"norun-{n}"),
                EngineContext(now=morning + timedelta(minutes=n)))
        assert result.replies[0].text.startswith("Thank you for telling us")

    await staff_login(client, role="coordinator", region="Stoke")
    assert await home_flags(client) == ["Hanley SMART"]
    html = await report_page(client)
    hanley = section(html, "Hanley SMART")
    assert FLAG in hanley
    assert "Tuesday 24 November 2026" in hanley and "2 people" in hanley
    assert "Alex" not in html and "Bea" not in html  # counts only, never who


async def test_one_person_twice_does_not_flag(
        engine: AsyncEngine, client: httpx.AsyncClient, staff_login: StaffLogin) -> None:
    meeting_id = await add_meeting(engine)
    alex = await add_person(engine, "Alex")
    await said_norun(engine, participant_id=alex, meeting_id=meeting_id,
                     at=NOW - timedelta(days=8), occurrence=TUESDAY - timedelta(days=7))
    await said_norun(engine, participant_id=alex, meeting_id=meeting_id,
                     at=NOW - timedelta(days=1))
    await staff_login(client, role="coordinator", region="Stoke")
    assert await home_flags(client) == []
    hanley = section(await report_page(client), "Hanley SMART")
    assert FLAG not in hanley
    assert "Tuesday 17 November 2026" in hanley and "1 person" in hanley


async def test_reports_older_than_14_days_do_not_flag(
        engine: AsyncEngine, client: httpx.AsyncClient, staff_login: StaffLogin) -> None:
    meeting_id = await add_meeting(engine)
    alex, bea = await add_person(engine, "Alex"), await add_person(engine, "Bea")
    await said_norun(engine, participant_id=alex, meeting_id=meeting_id,
                     at=NOW - timedelta(days=15), occurrence=TUESDAY - timedelta(days=14))
    await said_norun(engine, participant_id=bea, meeting_id=meeting_id,
                     at=NOW - timedelta(days=1))
    await staff_login(client, role="coordinator", region="Stoke")
    assert await home_flags(client) == []
    hanley = section(await report_page(client), "Hanley SMART")
    assert FLAG not in hanley
    assert "Tuesday 10 November 2026" in hanley  # still listed, just not flagged


async def test_only_active_meetings_and_unanswered_reports_count(engine: AsyncEngine) -> None:
    ids = [await add_meeting(engine, name, status=status, confirmed_running_at=confirmed)
           for name, status, confirmed in (
               ("Open", MeetingStatus.ACTIVE, None),
               ("Paused", MeetingStatus.SUSPENDED, None),
               ("Checked", MeetingStatus.ACTIVE, NOW - timedelta(hours=1)))]
    people = [await add_person(engine, name) for name in ("Alex", "Bea", "Cal")]
    for meeting_id in ids:
        for n, pid in enumerate(people[:2]):
            await said_norun(engine, participant_id=pid, meeting_id=meeting_id,
                             at=NOW - timedelta(days=1, minutes=n))
    await said_norun(engine, participant_id=people[2], meeting_id=ids[2],
                     at=NOW - timedelta(minutes=5))  # after the check: one person only
    async with session_scope(engine) as session:
        meetings = list((await session.exec(select(Meeting).order_by(col(Meeting.id)))).all())
        stale = await stale_meetings(session, meetings, now=NOW)
        grouped = await norun_reports(session, meetings, since=NOW - timedelta(days=30))
    assert [(s.meeting.name, s.reporters, s.reports) for s in stale] == [("Open", 2, 2)]
    assert stale[0].last_reported_at == NOW - timedelta(days=1)
    assert {g.meeting.name: [(d.day, d.people, d.answered) for d in g.dates]
            for g in grouped} == {
        "Open": [(date(2026, 11, 24), 2, False)],
        "Paused": [(date(2026, 11, 24), 2, False)],
        "Checked": [(date(2026, 11, 24), 3, False)]}


async def test_confirming_it_runs_clears_the_flag(
        engine: AsyncEngine, client: httpx.AsyncClient, staff_login: StaffLogin,
        clock: Clock) -> None:
    meeting_id = await add_meeting(engine)
    for n, name in enumerate(("Alex", "Bea")):
        await said_norun(engine, participant_id=await add_person(engine, name),
                         meeting_id=meeting_id, at=NOW - timedelta(hours=5 - n))
    me = await staff_login(client, role="coordinator", region="Stoke")
    assert await home_flags(client) == ["Hanley SMART"]
    response = await submit(client, f"{PAGE}/{meeting_id}/confirm", {}, form_page=PAGE)
    assert response.status_code == 303 and response.headers["location"] == PAGE
    page = await client.get(PAGE)
    assert read_page(page.text).notice.startswith("Hanley SMART is marked as running.")
    hanley = section(page.text, "Hanley SMART")
    assert FLAG not in hanley and "(before it was confirmed running)" in hanley
    assert await home_flags(client) == []
    async with session_scope(engine) as session:
        meeting = await session.get(Meeting, meeting_id)
        events = (await session.exec(select(AuditEvent).where(
            col(AuditEvent.action) == "meeting_confirmed_running"))).all()
    assert meeting is not None and meeting.confirmed_running_at == NOW
    assert [(e.actor, (e.detail or {}).get("meeting_id")) for e in events] == [
        (f"staff:{me.staff_id}", meeting_id)]

    clock.advance(days=1)  # one more report after the check is not enough on its own
    await said_norun(engine, participant_id=await add_person(engine, "Cal"),
                     meeting_id=meeting_id, at=clock.now - timedelta(hours=1))
    assert await home_flags(client) == []


async def test_suspending_tells_each_subscriber_once_with_an_alternative(
        engine: AsyncEngine, client: httpx.AsyncClient, staff_login: StaffLogin) -> None:
    meeting_id = await add_meeting(engine)
    await add_meeting(engine, "Stoke Recovery Hub", weekday=3, venue="Stoke Town Hall",
                      address="Glebe Street, Stoke", postcode="ST4 1HH", lat=53.0030, lon=-2.1800)
    phones = ("+447700900111", "+447700900222")
    people = []
    async with session_scope(engine) as session:
        for name, phone in zip(("Alex", "Bea"), phones, strict=True):
            p = await enrolled_participant(session, address=phone, name=name)
            p.discreet = False  # texts that name the meetings (discreet ones: test_discreet)
            session.add(p)
            await subscribe(session, participant_id=p.id or 0, meeting_id=meeting_id, now=NOW)
            people.append(p.id or 0)
    for pid in people:
        await said_norun(engine, participant_id=pid, meeting_id=meeting_id,
                         at=NOW - timedelta(hours=3))
    me = await staff_login(client, role="coordinator", region="Stoke")
    response = await submit(client, f"{PAGE}/{meeting_id}/suspend", {}, form_page=PAGE)
    assert response.status_code == 303
    page = await client.get(PAGE)
    assert read_page(page.text).notice == ("Hanley SMART is suspended. 2 people were told, "
                                           "with the nearest other meeting.")
    hanley = section(page.text, "Hanley SMART")
    assert "Suspended" in hanley and FLAG not in hanley
    assert "Suspend this meeting" not in hanley
    assert await home_flags(client) == []

    token = read_page(page.text).csrf
    again = await client.post(f"{PAGE}/{meeting_id}/suspend", data={"csrf_token": token})
    assert again.status_code == 303  # a second click (an old tab) tells nobody again
    assert read_page((await client.get(PAGE)).text).notice == (
        "Hanley SMART was already suspended. No one was told again.")
    refused = await client.post(f"{PAGE}/{meeting_id}/confirm", data={"csrf_token": token})
    assert refused.status_code == 400
    assert read_page(refused.text).summary == [
        (f"#meeting-{meeting_id}", "Hanley SMART is suspended, so it cannot be confirmed "
                                   "as running.")]
    async with session_scope(engine) as session:
        told = [m for m in (await session.exec(select(OutboundMessage).where(
            col(OutboundMessage.status) != str(OutboxStatus.CANCELLED)))).all()
            if "Hanley SMART" in m.body]
        meeting = await session.get(Meeting, meeting_id)
        events = (await session.exec(select(AuditEvent).where(
            col(AuditEvent.action) == "meeting_suspended"))).all()
    assert meeting is not None and meeting.status == MeetingStatus.SUSPENDED
    assert sorted(m.address for m in told) == sorted(phones)
    for message in told:
        assert "Hanley SMART" in message.body and "Stoke Recovery Hub" in message.body
    assert events and all(e.actor == f"staff:{me.staff_id}" for e in events)
    assert (events[0].detail or {}).get("told") == 2


async def test_another_regions_meeting_is_not_shown_or_changed(
        engine: AsyncEngine, client: httpx.AsyncClient, new_client: object,
        staff_login: StaffLogin) -> None:
    meeting_id = await add_meeting(engine, region="Leeds", postcode="LS1 1UR",
                                   lat=53.7997, lon=-1.5492)
    for name in ("Alex", "Bea"):
        await said_norun(engine, participant_id=await add_person(engine, name),
                         meeting_id=meeting_id, at=NOW - timedelta(hours=2))
    await staff_login(client, role="coordinator", region="Stoke")
    assert await home_flags(client) == []
    html = await report_page(client)
    assert "Hanley SMART" not in html
    token = read_page(html).csrf
    for action in ("confirm", "suspend"):
        refused = await client.post(f"{PAGE}/{meeting_id}/{action}", data={"csrf_token": token})
        assert refused.status_code == 404, action
    for path in (f"{PAGE}/abc/confirm", f"{PAGE}/0/suspend", f"{PAGE}/99999/suspend",
                 f"{PAGE}/{10**30}/confirm", f"{PAGE}/-1/confirm"):
        assert (await client.post(path, data={"csrf_token": token})).status_code == 404, path
    async with session_scope(engine) as session:
        meeting = await session.get(Meeting, meeting_id)
    assert meeting is not None and meeting.status == MeetingStatus.ACTIVE
    assert meeting.confirmed_running_at is None


async def test_champions_see_no_flags_and_cannot_use_the_page(
        engine: AsyncEngine, client: httpx.AsyncClient, staff_login: StaffLogin) -> None:
    meeting_id = await add_meeting(engine)
    for name in ("Alex", "Bea"):
        await said_norun(engine, participant_id=await add_person(engine, name),
                         meeting_id=meeting_id, at=NOW - timedelta(hours=2))
    await staff_login(client, role="champion")
    assert HOME_SECTION not in (await client.get("/staff/")).text
    assert (await client.get(PAGE)).status_code == 403
    token = read_page((await client.get("/staff/")).text).csrf
    refused = await client.post(f"{PAGE}/{meeting_id}/suspend", data={"csrf_token": token})
    assert refused.status_code == 403


async def test_admins_see_every_regions_flags(
        engine: AsyncEngine, client: httpx.AsyncClient, staff_login: StaffLogin) -> None:
    for region, name in (("Stoke", "Hanley SMART"), ("Leeds", "Leeds Central")):
        meeting_id = await add_meeting(engine, name, region=region)
        for person in ("Alex", "Bea"):
            await said_norun(engine, participant_id=await add_person(engine, person),
                             meeting_id=meeting_id, at=NOW - timedelta(hours=2))
    await staff_login(client, role="admin")
    assert sorted(await home_flags(client)) == ["Hanley SMART", "Leeds Central"]
    html = await report_page(client)
    assert FLAG in section(html, "Hanley SMART") and FLAG in section(html, "Leeds Central")


async def test_no_reports_says_so(client: httpx.AsyncClient, staff_login: StaffLogin) -> None:
    await staff_login(client, role="coordinator", region="Stoke")
    html = await report_page(client)
    assert "No one has said a meeting did not run in the last 8 weeks." in html
    assert HOME_SECTION not in (await client.get("/staff/")).text

"""Keeping an aftercare plan on its page: goals, meetings near the release area, appointments
that become reminders, key contacts, moving the release date, marking someone released, a
new link code, and the record of who looked and what they changed.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from handlers.engine import handle_inbound
from handlers.types import EngineContext
from meeting_finder.demo import load_demo_meetings
from scheduler.planning import plan
from storage.db import session_scope
from storage.errors import LinkCodeError
from storage.models import (
    Meeting,
    MeetingSubscription,
    MessageKind,
    OutboundMessage,
    OutboxStatus,
    Participant,
)
from storage.participants import redeem_link_code
from tests.auxil.builders import make_inbound
from tests.auxil.enrolling import CODE, Enrolled, enrol_on_page
from tests.auxil.tables import read_tables
from tests.auxil.web import read_page, submit
from tests.web.conftest import NOW, SignedIn, StaffLogin

AUDIT = "Every look at or change to this record, newest first"


async def _linked(engine: AsyncEngine, enrolled: Enrolled, phone: str = "+447400123456"
                  ) -> None:
    """Link the participant by text with their code and agree (YES), as they would."""
    async with session_scope(engine) as session:
        ctx = EngineContext(now=NOW)
        await handle_inbound(session, make_inbound(enrolled.code, address=phone), ctx)
        await handle_inbound(session, make_inbound("YES", address=phone), ctx)


async def _participant(engine: AsyncEngine, pid: int) -> Participant:
    async with session_scope(engine) as session:
        p = await session.get(Participant, pid)
        assert p is not None
        return p


async def _queued(engine: AsyncEngine, pid: int) -> list[OutboundMessage]:
    async with session_scope(engine) as session:
        return list((await session.exec(select(OutboundMessage).where(
            OutboundMessage.participant_id == pid,
            OutboundMessage.status == OutboxStatus.QUEUED))).all())


@pytest.fixture
async def me(client: httpx.AsyncClient, staff_login: StaffLogin) -> SignedIn:
    """Sign in as a Champion at HMP Test."""
    return await staff_login(client)


async def test_goals_are_added_and_removed(client: httpx.AsyncClient, me: SignedIn) -> None:
    pid = (await enrol_on_page(client)).participant_id
    base = f"/staff/participants/{pid}"
    added = await submit(client, f"{base}/goals", {"goal": "Go to a meeting in week one"},
                         form_page=base)
    assert added.status_code == 303 and added.headers["location"] == base
    page = read_page((await client.get(base)).text)
    assert page.notice == "Goal added."
    assert "Remove goal: Go to a meeting in week one" in page.buttons
    await submit(client, f"{base}/goals/remove",
                 {"index": "0", "goal": "Go to a meeting in week one"}, form_page=base)
    page = read_page((await client.get(base)).text)
    assert not [b for b in page.buttons if b.startswith("Remove goal")]


async def test_an_empty_goal_is_refused_on_the_plan_page(client: httpx.AsyncClient,
                                                         me: SignedIn) -> None:
    pid = (await enrol_on_page(client)).participant_id
    base = f"/staff/participants/{pid}"
    response = await submit(client, f"{base}/goals", {"goal": "   "}, form_page=base)
    assert response.status_code == 400
    page = read_page(response.text)
    assert page.summary == [("#goal", "Goal must not be empty")]
    assert page.error_for("Goal") == "Goal must not be empty" and page.h1 == "Sam"


async def test_an_appointment_becomes_reminders_and_removing_it_withdraws_them(
        client: httpx.AsyncClient, me: SignedIn, engine: AsyncEngine) -> None:
    enrolled = await enrol_on_page(client)
    await _linked(engine, enrolled)
    base = f"/staff/participants/{enrolled.participant_id}"
    form = read_page((await client.get(f"{base}/appointments/new")).text)
    assert {"Probation", "Treatment", "Prescription", "GP", "Housing", "Other", "Time",
            "Where", "Details"} <= set(form.labels)
    added = await submit(client, f"{base}/appointments/new", {
        "kind": "probation", "starts_at-day": "27", "starts_at-month": "11",
        "starts_at-year": "2026", "time": "14:30", "place": "Hanley Probation Office"})
    assert added.status_code == 303
    rows = read_tables((await client.get(base)).text)[
        "Appointments to come, with reminders the evening before and that morning"]
    assert rows[1][:3] == ["Probation", "27 Nov 2026, 2:30pm", "Hanley Probation Office"]
    await plan(engine, now=NOW)
    reminders = [r for r in await _queued(engine, enrolled.participant_id)
                 if r.appointment_id is not None]
    assert sorted(r.due_at for r in reminders) == [
        datetime(2026, 11, 26, 18, tzinfo=UTC), datetime(2026, 11, 27, 8, tzinfo=UTC)]
    assert all(r.kind == MessageKind.REMINDER and "2:30pm" in r.body for r in reminders)
    removed = await submit(client, f"{base}/appointments/{reminders[0].appointment_id}/remove",
                           {}, form_page=base)
    assert removed.status_code == 303
    await plan(engine, now=NOW)
    assert [r for r in await _queued(engine, enrolled.participant_id)
            if r.appointment_id is not None] == []


@pytest.mark.parametrize(("answers", "field", "message"), [
    ({"time": "25:00"}, "time", "Time must be a real time, like 14:30"),
    ({"time": ""}, "time", "Enter the time"),
    ({"kind": ""}, "kind", "Choose what the appointment is for"),
    ({"starts_at-day": "20"}, "starts_at", "Date and time must be in the future"),
])
async def test_appointment_problems_show_beside_the_field(
        client: httpx.AsyncClient, me: SignedIn, answers: dict[str, str], field: str,
        message: str) -> None:
    pid = (await enrol_on_page(client)).participant_id
    path = f"/staff/participants/{pid}/appointments/new"
    data = {"kind": "gp", "starts_at-day": "30", "starts_at-month": "11",
            "starts_at-year": "2026", "time": "09:00", "place": "Surgery", **answers}
    response = await submit(client, path, data)
    assert response.status_code == 400
    page = read_page(response.text)
    assert page.summary == [(f"#{field}", message)] and page.field_errors[field] == message
    assert page.value_of("Where") == "Surgery"


async def test_meetings_nearest_the_release_area_are_chosen_and_removed(
        client: httpx.AsyncClient, me: SignedIn, engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=NOW)
        session.add(Meeting(slug="zone-test", name="Irish Time Group", weekday=0,
                            start_time=time(19), timezone="Europe/Dublin", venue="Hall",
                            address="1 Test Road", postcode="ST6 1AA", lat=53.0600,
                            lon=-2.2000))
    pid = (await enrol_on_page(client)).participant_id
    path = f"/staff/participants/{pid}/meetings"
    html = (await client.get(path)).text
    rows = read_tables(html)["Open meetings nearest ST3 2"]
    assert rows[0] == ["Meeting", "Day", "Time", "Distance", "Action"]
    first = rows[1]
    assert first[1] == "Mondays" and first[2] == "7pm" and re.fullmatch(r"\d+\.\d miles",
                                                                        first[3])
    assert any(r[2] == "7pm (Europe/Dublin time)" for r in rows[1:])
    meeting_id = int(re.findall(rf'action="{path}/(\d+)/choose"', html)[0])
    chosen = await submit(client, f"{path}/{meeting_id}/choose", {}, form_page=path)
    assert chosen.status_code == 303 and chosen.headers["location"] == path
    async with session_scope(engine) as session:
        subs = (await session.exec(select(MeetingSubscription))).all()
    assert [(s.participant_id, s.meeting_id) for s in subs] == [(pid, meeting_id)]
    plan_page = (await client.get(f"/staff/participants/{pid}")).text
    assert read_tables(plan_page)["Meetings they chose"][1][1:4] == first[1:4]
    await submit(client, f"{path}/{meeting_id}/remove", {}, form_page=path)
    async with session_scope(engine) as session:
        assert (await session.exec(select(MeetingSubscription))).all() == []


async def test_key_contacts_are_added_checked_and_removed(client: httpx.AsyncClient,
                                                          me: SignedIn) -> None:
    pid = (await enrol_on_page(client)).participant_id
    path = f"/staff/participants/{pid}/contacts/new"
    form = read_page((await client.get(path)).text)
    assert {"Name", "Role", "Phone"} <= set(form.labels)
    refused = read_page((await submit(client, path, {"name": "Pat", "phone": "call me"})).text)
    assert refused.error_for("Phone") == "Phone is not a phone number: 'call me'"
    assert refused.value_of("Name") == "Pat"
    await submit(client, path, {"name": "Pat Jones", "role": "Probation officer",
                                "phone": "01632960001"})
    base = f"/staff/participants/{pid}"
    rows = read_tables((await client.get(base)).text)["People they can contact"]
    assert rows[1][:3] == ["Pat Jones", "Probation officer", "01632 960001"]
    contact_id = re.findall(rf'action="{base}/contacts/(\d+)/remove"',
                            (await client.get(base)).text)[0]
    await submit(client, f"{base}/contacts/{contact_id}/remove", {}, form_page=base)
    assert "People they can contact" not in read_tables((await client.get(base)).text)


async def test_moving_the_release_date_moves_the_release_messages_at_once(
        client: httpx.AsyncClient, me: SignedIn, engine: AsyncEngine) -> None:
    enrolled = await enrol_on_page(client, release=date(2026, 12, 1))
    await _linked(engine, enrolled)
    await plan(engine, now=NOW)

    def welcome(rows: list[OutboundMessage]) -> datetime:
        return next(r.due_at for r in rows if r.dedupe_key.endswith(":welcome"))

    assert welcome(await _queued(engine, enrolled.participant_id)) == datetime(
        2026, 12, 1, 10, tzinfo=UTC)
    path = f"/staff/participants/{enrolled.participant_id}/release-date"
    moved = await submit(client, path, {"release_date-day": "3", "release_date-month": "12",
                                        "release_date-year": "2026"})
    assert moved.status_code == 303
    assert welcome(await _queued(engine, enrolled.participant_id)) == datetime(
        2026, 12, 3, 10, tzinfo=UTC)  # no planning pass in between
    page = read_page((await client.get(moved.headers["location"])).text)
    assert page.notice.startswith("Release date changed to Thursday 3 December 2026.")
    refused = read_page((await submit(client, path, {
        "release_date-day": "1", "release_date-month": "11", "release_date-year": "2026"})).text)
    assert refused.field_errors["release_date"] == (
        "Release date 2026-11-01 is more than 7 days ago; check the date")


async def test_marking_someone_released_records_when_they_left(
        client: httpx.AsyncClient, me: SignedIn, engine: AsyncEngine) -> None:
    enrolled = await enrol_on_page(client, release=date(2026, 12, 1))
    await _linked(engine, enrolled)
    base = f"/staff/participants/{enrolled.participant_id}"
    form = read_page((await client.get(f"{base}/released")).text)
    assert form.value_of("Time released") == "12:00" and form.value_of("Day") == "26"
    future = await submit(client, f"{base}/released", {
        "released-day": "26", "released-month": "11", "released-year": "2026",
        "released_time": "15:00"})
    assert read_page(future.text).summary == [
        ("#released", "Date and time released must be now or in the past")]
    done = await submit(client, f"{base}/released", {
        "released-day": "26", "released-month": "11", "released-year": "2026",
        "released_time": "9:15am"})
    assert done.status_code == 303
    p = await _participant(engine, enrolled.participant_id)
    assert p.released_at == datetime(2026, 11, 26, 9, 15, tzinfo=UTC)
    assert p.release_date == date(2026, 11, 26)
    welcome = [r for r in await _queued(engine, enrolled.participant_id)
               if r.dedupe_key.endswith(":welcome")]
    assert [r.due_at.date() for r in welcome] == [date(2026, 11, 26)]  # planned at once
    page = read_page((await client.get(base)).text)
    assert page.notice == ("Marked as released at 26 Nov 2026, 9:15am. "
                           "Their release messages start from then.")
    assert "Change release date" not in page.links
    refused = await submit(client, f"{base}/release-date", {
        "release_date-day": "3", "release_date-month": "12", "release_date-year": "2026"})
    assert read_page(refused.text).field_errors["release_date"] == (
        "Release date cannot change: they are marked as released; correct the time they "
        "were released instead")
    assert (await _participant(engine, enrolled.participant_id)).release_date == date(
        2026, 11, 26)


async def test_a_new_code_voids_the_old_one(client: httpx.AsyncClient, me: SignedIn,
                                            engine: AsyncEngine) -> None:
    enrolled = await enrol_on_page(client)
    base = f"/staff/participants/{enrolled.participant_id}"
    assert "Issue a new code" in read_page((await client.get(base)).text).buttons
    response = await submit(client, f"{base}/code", {}, form_page=base)
    assert response.status_code == 200
    assert read_page(response.text).h1 == "New link code for Sam"
    match = CODE.search(response.text)
    assert match and match.group(1) != enrolled.code
    async with session_scope(engine) as session:
        with pytest.raises(LinkCodeError, match="expired"):
            await redeem_link_code(session, code=enrolled.code, now=NOW)
        assert (await redeem_link_code(session, code=match.group(1), now=NOW)).id == (
            enrolled.participant_id)
    assert match.group(1) not in (await client.get(base)).text


async def test_every_look_and_change_is_on_the_record_with_who_and_when(
        client: httpx.AsyncClient, me: SignedIn, staff_login: StaffLogin,
        new_client: object) -> None:
    pid = (await enrol_on_page(client)).participant_id
    base = f"/staff/participants/{pid}"
    await submit(client, f"{base}/goals", {"goal": "Find work"}, form_page=base)
    await submit(client, f"{base}/code", {}, form_page=base)
    await submit(client, f"{base}/release-date", {
        "release_date-day": "12", "release_date-month": "12", "release_date-year": "2026"})
    rows = read_tables((await client.get(base)).text)[AUDIT]
    assert rows[0] == ["When", "Who", "What"]
    assert {r[1] for r in rows[1:]} == {me.email}
    assert {r[0] for r in rows[1:]} == {"26 Nov 2026, 12:00pm"}
    whats = [r[2] for r in rows[1:]]
    assert whats[0] == "Looked at their plan"  # this very look is on the record
    for done in ("Enrolled them", "Added a goal",
                 "Issued a new link code (older codes stopped working)",
                 "Moved the release date from 2026-12-10 to 2026-12-12",
                 "Sent a change from the release date form", "Looked at the release date form"):
        assert done in whats, whats
    assert whats[-1] == "Enrolled them"

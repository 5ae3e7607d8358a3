"""Every participant page and form is a 404 outside the staff member's scope (another
prison's person, or any person for a coordinator), changes nothing and leaves no trace on
that person's record; ids of another person's rows are 404 under one's own participant.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from meeting_finder.demo import load_demo_meetings
from storage.audit_q import staff_actions_for
from storage.db import session_scope
from storage.models import (
    AftercarePlan,
    Appointment,
    AppointmentKind,
    KeyContact,
    LinkCode,
    Meeting,
    MeetingSubscription,
    Participant,
)
from storage.subscriptions import subscribe
from tests.auxil.enrolling import enrol_on_page
from tests.auxil.web import read_page
from tests.web.conftest import NOW, StaffLogin
from tests.web.test_roles_scope_audit import enrol_at

GETS = ("", "/release-date", "/released", "/meetings", "/appointments/new",
        "/contacts/new", "/discreet", "/card")


def posts(appointment: int, contact: int, meeting: int) -> list[tuple[str, dict[str, str]]]:
    """Return every form on a participant's pages, with answers that would be accepted."""
    return [
        ("/goals", {"goal": "Find work"}),
        ("/discreet", {"discreet": "off"}),
        ("/goals/remove", {"index": "0", "goal": "Stay well"}),
        ("/release-date", {"release_date-day": "20", "release_date-month": "12",
                           "release_date-year": "2026"}),
        ("/released", {"released-day": "26", "released-month": "11", "released-year": "2026",
                       "released_time": "09:00"}),
        ("/code", {}),
        ("/appointments/new", {"kind": "gp", "starts_at-day": "1", "starts_at-month": "12",
                               "starts_at-year": "2026", "time": "10:00"}),
        (f"/appointments/{appointment}/remove", {}),
        ("/contacts/new", {"name": "Pat", "role": "Probation officer"}),
        (f"/contacts/{contact}/remove", {}),
        (f"/meetings/{meeting}/choose", {}),
        (f"/meetings/{meeting}/remove", {}),
        ("/card", {}),
    ]


async def _their_plan(engine: AsyncEngine, prison: str = "HMP Elsewhere"
                      ) -> tuple[int, int, int, int]:
    """Enrol someone elsewhere with a goal, appointment, contact and chosen meeting."""
    pid = await enrol_at(engine, prison, "Jo")
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=NOW)
        meeting = (await session.exec(select(Meeting).where(
            Meeting.slug == "demo-longton-mon"))).one()
        plan = (await session.exec(select(AftercarePlan).where(
            AftercarePlan.participant_id == pid))).one()
        plan.goals = ["Stay well"]
        session.add(plan)
        appointment = Appointment(participant_id=pid, kind=AppointmentKind.GP,
                                  starts_at=datetime(2026, 12, 1, 10, tzinfo=UTC))
        contact = KeyContact(participant_id=pid, name="Pat")
        session.add_all([appointment, contact])
        await session.flush()
        await subscribe(session, participant_id=pid, meeting_id=meeting.id or 0, now=NOW)
        assert appointment.id and contact.id and meeting.id
        return pid, appointment.id, contact.id, meeting.id


async def _snapshot(engine: AsyncEngine, pid: int) -> tuple[object, ...]:
    async with session_scope(engine) as session:
        p = await session.get(Participant, pid)
        assert p is not None
        rows = [(await session.exec(select(model).where(model.participant_id == pid))).all()
                for model in (AftercarePlan, Appointment, KeyContact, MeetingSubscription,
                              LinkCode)]
        return (p.model_dump(warnings=False),
                [[r.model_dump(warnings=False) for r in found] for found in rows])


@pytest.mark.parametrize("role", ["champion", "coordinator"])
async def test_every_page_and_form_of_someone_outside_scope_is_not_found(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine,
        role: str) -> None:
    pid, appointment, contact, meeting = await _their_plan(engine)
    before = await _snapshot(engine, pid)
    await staff_login(client, role=role, prison="HMP Test")
    token = read_page((await client.get("/staff/")).text).csrf
    base = f"/staff/participants/{pid}"
    for path in GETS:
        response = await client.get(base + path)
        assert response.status_code == 404, path
        assert read_page(response.text).h1 == "Page not found"
    for path, data in posts(appointment, contact, meeting):
        response = await client.post(base + path, data={"csrf_token": token, **data})
        assert response.status_code == 404, path
    assert await _snapshot(engine, pid) == before
    async with session_scope(engine) as session:
        assert await staff_actions_for(session, pid) == []


async def test_another_persons_rows_are_not_found_under_ones_own_participant(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    theirs, appointment, contact, meeting = await _their_plan(engine)
    before = await _snapshot(engine, theirs)
    await staff_login(client, prison="HMP Test")
    mine = (await enrol_on_page(client)).participant_id
    token = read_page((await client.get("/staff/")).text).csrf
    base = f"/staff/participants/{mine}"
    for path in (f"/appointments/{appointment}/remove", f"/contacts/{contact}/remove",
                 f"/meetings/{meeting}/remove"):
        response = await client.post(base + path, data={"csrf_token": token})
        assert response.status_code == 404, path
    assert await _snapshot(engine, theirs) == before


async def test_admins_reach_any_participant(client: httpx.AsyncClient, staff_login: StaffLogin,
                                            engine: AsyncEngine) -> None:
    pid, *_ = await _their_plan(engine)
    await staff_login(client, role="admin")
    for path in GETS[:-1]:
        assert (await client.get(f"/staff/participants/{pid}{path}")).status_code == 200, path

"""A Champion chooses discreet texts for a participant on their plan: stored, audited, and
the reminders the planner writes follow the choice."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from handlers.engine import handle_inbound
from handlers.types import EngineContext
from scheduler.planning import plan
from storage.db import session_scope
from storage.models import AuditEvent, OutboundMessage, OutboxStatus, Participant
from tests.auxil.builders import make_inbound
from tests.auxil.enrolling import Enrolled, enrol_on_page
from tests.auxil.tables import read_tables
from tests.auxil.web import read_page, submit
from tests.web.conftest import NOW, SignedIn, StaffLogin
from tests.web.test_roles_scope_audit import enrol_at

PHONE = "+447400123456"
AUDIT = "Every look at or change to this record, newest first"


async def _linked(engine: AsyncEngine, enrolled: Enrolled) -> None:
    """Link the participant by text with their code and agree (YES), as they would."""
    async with session_scope(engine) as session:
        ctx = EngineContext(now=NOW)
        await handle_inbound(session, make_inbound(enrolled.code, address=PHONE), ctx)
        await handle_inbound(session, make_inbound("YES", address=PHONE), ctx)


async def _discreet(engine: AsyncEngine, pid: int) -> bool | None:
    async with session_scope(engine) as session:
        p = await session.get(Participant, pid)
        assert p is not None
        return p.discreet


async def _appointment_reminders(engine: AsyncEngine, pid: int) -> list[str]:
    async with session_scope(engine) as session:
        found = await session.exec(select(OutboundMessage).where(
            OutboundMessage.participant_id == pid, OutboundMessage.status == OutboxStatus.QUEUED,
            col(OutboundMessage.appointment_id).is_not(None)).order_by(
            col(OutboundMessage.due_at)))
        return [r.body for r in found.all()]


async def test_a_champion_turns_discreet_texts_off_and_on_again(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    me: SignedIn = await staff_login(client)
    enrolled = await enrol_on_page(client)
    await _linked(engine, enrolled)
    pid = enrolled.participant_id
    base = f"/staff/participants/{pid}"
    plan_page = read_page((await client.get(base)).text)
    path = plan_page.links["Discreet texts (what a locked phone shows)"]
    assert path == f"{base}/discreet"
    form = read_page((await client.get(path)).text)
    assert form.h1 == "Discreet texts for Sam"
    labels = ["Use the default (on for text messages)", "On", "Off"]
    assert [label for label in form.labels if label in labels] == labels
    assert "checked" in form.inputs[form.labels[labels[0]]]  # nobody chose yet
    await submit(client, f"{base}/appointments/new", {
        "kind": "probation", "starts_at-day": "27", "starts_at-month": "11",
        "starts_at-year": "2026", "time": "14:30", "place": "Hanley Probation Office"})
    await plan(engine, now=NOW)
    assert await _appointment_reminders(engine, pid) == [
        "Reminder: your appointment is tomorrow at 2:30pm.",
        "Reminder: your appointment is today at 2:30pm."]

    turned_off = await submit(client, path, {"discreet": "off"})
    assert turned_off.status_code == 303 and turned_off.headers["location"] == base
    assert await _discreet(engine, pid) is False
    page = read_page((await client.get(base)).text)
    assert page.notice == "Discreet texts are off. Reminders will name the meeting."
    assert [r[1:] for r in read_tables((await client.get(base)).text)[AUDIT][1:]
            if r[2] == "Turned discreet texts off"] == [[me.email, "Turned discreet texts off"]]
    await plan(engine, now=NOW)  # the queued reminders are reworded
    assert await _appointment_reminders(engine, pid) == [
        "Reminder: your probation appointment is tomorrow at 2:30pm, Hanley Probation Office.",
        "Reminder: your probation appointment is today at 2:30pm, Hanley Probation Office."]
    assert "checked" in read_page((await client.get(path)).text).inputs["discreet-3"]

    await submit(client, path, {"discreet": "default"})
    assert await _discreet(engine, pid) is None
    async with session_scope(engine) as session:
        actions = (await session.exec(select(AuditEvent.action).where(
            AuditEvent.participant_id == pid, col(AuditEvent.action).startswith("discreet"))
            .order_by(col(AuditEvent.id)))).all()
    assert list(actions) == ["discreet_off", "discreet_default"]


async def test_no_choice_is_refused_beside_the_field(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    await staff_login(client)
    pid = (await enrol_on_page(client)).participant_id
    response = await submit(client, f"/staff/participants/{pid}/discreet", {"discreet": "x"})
    assert response.status_code == 400
    page = read_page(response.text)
    assert page.summary == [("#discreet", "Choose whether their texts are discreet")]
    assert await _discreet(engine, pid) is None


async def test_another_prisons_participant_is_not_found(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    theirs = await enrol_at(engine, "HMP Elsewhere", "Jo")
    await staff_login(client, prison="HMP Test")
    token = read_page((await client.get("/staff/")).text).csrf
    path = f"/staff/participants/{theirs}/discreet"
    assert (await client.get(path)).status_code == 404
    refused = await client.post(path, data={"csrf_token": token, "discreet": "off"})
    assert refused.status_code == 404 and await _discreet(engine, theirs) is None

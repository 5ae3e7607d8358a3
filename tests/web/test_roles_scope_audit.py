"""Who sees what: each role's home, the participant scope (a 404 outside it), the audit trail."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import PlainTextResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.web.staff.deps import AdminStaff, ScopedParticipant
from storage.audit_q import staff_actions_by, staff_actions_for
from storage.db import session_scope
from storage.participants import enrol
from tests.auxil.web import read_page, submit
from tests.web.conftest import NOW, StaffLogin, make_staff, sign_in


async def enrol_at(engine: AsyncEngine, prison: str, name: str = "Sam") -> int:
    """Enrol someone from a prison; return their id."""
    async with session_scope(engine) as session:
        participant, _code = await enrol(
            session, prison_name=prison, display_name=name, release_date=date(2026, 12, 10),
            release_postcode="ST3 2QH", now=NOW)
    assert participant.id is not None
    return participant.id


@pytest.fixture
def probe(app: FastAPI) -> FastAPI:
    """Add two pages the way page-builders will: one per participant, one for admins."""
    router = APIRouter(prefix="/staff/probe")

    @router.get("/participants/{participant_id}")
    async def show(participant: ScopedParticipant) -> PlainTextResponse:
        return PlainTextResponse(participant.display_name)

    @router.get("/admin-only")
    async def admin_only(staff: AdminStaff) -> PlainTextResponse:
        return PlainTextResponse(staff.email)

    app.include_router(router)
    return app


@pytest.mark.parametrize(("role", "links"), [
    ("champion", ["Participants", "Enrol someone", "Reports", "Simulator"]),
    ("coordinator", ["Meetings", "Feeds", "Broadcast", "Meeting reports", "Reports",
                     "Simulator", "Link Telegram"]),
    ("admin", ["Participants", "Enrol someone", "Meetings", "Feeds", "Broadcast",
               "Meeting reports", "Reports", "Regions", "Simulator", "Link Telegram"]),
])
async def test_each_role_has_its_home(client: httpx.AsyncClient, staff_login: StaffLogin,
                                      role: str, links: list[str]) -> None:
    await staff_login(client, role=role)
    page = read_page((await client.get("/staff/")).text)
    tasks = [text for text, href in page.links.items()
             if href.startswith("/staff/") and href not in ("/staff/", "/staff/password")]
    assert tasks == links


async def test_admins_see_every_staff_account(client: httpx.AsyncClient,
                                              staff_login: StaffLogin,
                                              engine: AsyncEngine) -> None:
    await make_staff(engine, role="champion", prison="HMP Leeds")
    await staff_login(client, role="admin")
    html = (await client.get("/staff/")).text
    assert "Staff accounts" in html
    assert "champion@example.org" in html and "HMP Leeds" in html


async def test_champions_see_only_their_own_prisons_participants(
        probe: FastAPI, client: httpx.AsyncClient, staff_login: StaffLogin,
        engine: AsyncEngine) -> None:
    ours = await enrol_at(engine, "HMP Test", "Sam")
    theirs = await enrol_at(engine, "HMP Elsewhere", "Jo")
    me = await staff_login(client, role="champion", prison="HMP Test")
    response = await client.get(f"/staff/probe/participants/{ours}")
    assert response.status_code == 200 and response.text == "Sam"
    outside = await client.get(f"/staff/probe/participants/{theirs}")
    assert outside.status_code == 404 and read_page(outside.text).h1 == "Page not found"
    assert (await client.get("/staff/probe/participants/999")).status_code == 404
    assert (await client.get("/staff/probe/participants/abc")).status_code == 404
    async with session_scope(engine) as session:
        seen = await staff_actions_for(session, ours)
        not_seen = await staff_actions_for(session, theirs)
    assert [(e.actor, e.action, e.at) for e in seen] == [
        (f"staff:{me.staff_id}", "participant_read", NOW)]
    assert seen[0].detail == {"page": "/staff/probe/participants/{participant_id}"}
    assert not_seen == []


async def test_coordinators_see_no_participant(probe: FastAPI, client: httpx.AsyncClient,
                                               staff_login: StaffLogin,
                                               engine: AsyncEngine) -> None:
    pid = await enrol_at(engine, "HMP Test")
    await staff_login(client, role="coordinator")
    assert (await client.get(f"/staff/probe/participants/{pid}")).status_code == 404


async def test_admins_see_any_participant(probe: FastAPI, client: httpx.AsyncClient,
                                          staff_login: StaffLogin, engine: AsyncEngine) -> None:
    pid = await enrol_at(engine, "HMP Elsewhere")
    await staff_login(client, role="admin")
    assert (await client.get(f"/staff/probe/participants/{pid}")).status_code == 200


async def test_a_role_page_refuses_other_roles(probe: FastAPI, client: httpx.AsyncClient,
                                               staff_login: StaffLogin) -> None:
    await staff_login(client, role="champion")
    response = await client.get("/staff/probe/admin-only")
    assert response.status_code == 403
    assert "Your account cannot use this page." in response.text


async def test_scoped_pages_need_a_session_too(probe: FastAPI, client: httpx.AsyncClient,
                                              engine: AsyncEngine) -> None:
    pid = await enrol_at(engine, "HMP Test")
    response = await client.get(f"/staff/probe/participants/{pid}")
    assert response.status_code == 303 and response.headers["location"] == "/staff/login"


async def test_sign_ins_and_outs_are_audited(client: httpx.AsyncClient,
                                             engine: AsyncEngine) -> None:
    user, password = await make_staff(engine, must_change_password=True)
    assert user.id is not None
    await sign_in(client, user.email, "wrong password")
    for _ in range(4):
        await sign_in(client, user.email, "wrong password")
    await sign_in(client, user.email, password)  # locked: not even tried
    async with session_scope(engine) as session:
        await session.exec(text("UPDATE staffuser SET locked_until = NULL"))  # time passes
    await sign_in(client, user.email, password)
    await submit(client, "/staff/password", {"new_password": "my own new password",
                                             "confirm_password": "my own new password"})
    await submit(client, "/staff/logout", {}, form_page="/staff/")
    async with session_scope(engine) as session:
        actions = [e.action for e in await staff_actions_by(session, user.id)]
    assert actions == ["sign_in_failed"] * 4 + ["account_locked", "sign_in",
                                                "password_changed", "sign_out"]

"""Every staff route that reads or changes participant data, broadcasts or exports writes an
audit row: walked over HTTP as a signed-in admin (who may use every page).

Each route of the staff console is either in ROUTES (the request that exercises it and the
audit actions it must write) or in NOT_PARTICIPANT_DATA (with the reason). A new route in
neither fails `test_every_staff_route_is_classified`: decide, then add it here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from storage.db import session_scope
from storage.models import (
    AuditEvent,
    Channel,
    ChannelIdentity,
    OutboundMessage,
    OutboxStatus,
    Participant,
    ParticipantStatus,
)
from tests.auxil.enrolling import enrolment
from tests.auxil.web import read_page
from tests.web.conftest import (  # noqa: F401  (fixtures)
    NOW,
    StaffLogin,
    app,
    client,
    clock,
    new_client,
    settings,
    staff_login,
)
from tests.web.test_participant_scope import _their_plan, posts

P = "/participants/{participant_id}"
PARTICIPANT_POST_ACTIONS = {  # the domain's own row, beside the page's participant_change
    "/goals": "goal_added", "/discreet": "discreet_off", "/goals/remove": "goal_removed",
    "/release-date": "release_date_moved", "/released": "marked_released", "/code": "new_code",
    "/appointments/new": "appointment_added",
    "/appointments/{appointment_id}/remove": "appointment_cancelled",
    "/contacts/new": "contact_added", "/contacts/{contact_id}/remove": "contact_removed",
    "/meetings/{meeting_id}/choose": "meeting_chosen",
    "/meetings/{meeting_id}/remove": "meeting_unchosen", "/card": "card_printed",
}
PARTICIPANT_GETS = ("", "/release-date", "/released", "/meetings", "/appointments/new",
                    "/contacts/new", "/discreet", "/card", "/card.pdf")
NOT_PARTICIPANT_DATA = {
    ("GET", "/staff/login"): "the sign-in form",
    ("POST", "/staff/login"): "signing in (the account's own state)",
    ("POST", "/staff/logout"): "signing out (audited as sign_out, no participant)",
    ("GET", "/staff/password"): "the password form",
    ("POST", "/staff/password"): "the staff member's own password",
    ("GET", "/staff/"): "tasks and meetings that may not run; no participant",
    ("GET", "/staff/participants/new"): "a blank enrolment form",
    ("GET", "/staff/reports/meetings"): "NORUN counts per meeting, never who said so",
    ("POST", "/staff/reports/meetings/{meeting_id}/confirm"): "meeting data (audited)",
    ("POST", "/staff/reports/meetings/{meeting_id}/suspend"): "meeting data (audited)",
    ("GET", "/staff/meetings"): "meeting data",
    ("GET", "/staff/meetings/new"): "meeting data",
    ("POST", "/staff/meetings/new"): "meeting data (audited)",
    ("GET", "/staff/meetings/{meeting_id}"): "meeting data",
    ("GET", "/staff/meetings/{meeting_id}/edit"): "meeting data",
    ("POST", "/staff/meetings/{meeting_id}/edit"): "meeting data (audited)",
    ("GET", "/staff/meetings/{meeting_id}/cancel-date"): "meeting data",
    ("POST", "/staff/meetings/{meeting_id}/cancel-date"): "meeting data (audited)",
    ("POST", "/staff/meetings/{meeting_id}/restore-date"): "meeting data (audited)",
    ("GET", "/staff/meetings/{meeting_id}/{action}"): "meeting data",
    ("POST", "/staff/meetings/{meeting_id}/{action}"): "meeting data (audited)",
    ("GET", "/staff/feeds"): "meeting feeds",
    ("POST", "/staff/feeds"): "a feed preview: nothing saved",
    ("POST", "/staff/feeds/{feed_id}/refresh"): "a feed preview: nothing saved",
    ("POST", "/staff/feeds/apply"): "meeting data (audited as feed_import)",
    ("GET", "/staff/broadcasts/new"): "a blank broadcast form",
    ("GET", "/staff/broadcasts"): "broadcasts with delivery counts, no person",
    ("GET", "/staff/regions"): "regions",
    ("POST", "/staff/regions"): "regions (audited)",
    ("GET", "/staff/regions/{region_id}/edit"): "regions",
    ("POST", "/staff/regions/{region_id}/edit"): "regions (audited)",
    ("GET", "/staff/regions/{region_id}/delete"): "regions",
    ("POST", "/staff/regions/{region_id}/delete"): "regions (audited)",
    ("GET", "/staff/simulator"): "a simulated person (start and end audited)",
    ("POST", "/staff/simulator/start"): "a simulated person (audited as simulator_start)",
    ("POST", "/staff/simulator/say"): "a simulated person, typed by staff",
    ("POST", "/staff/simulator/end"): "a simulated person (audited as simulator_end)",
    ("GET", "/staff/telegram"): "the staff member's own Telegram link (audited)",
    ("POST", "/staff/telegram/unlink"): "the staff member's own Telegram link (audited)",
}


@dataclass
class Call:
    """One request that exercises a route, and the audit actions it must write."""

    method: str
    url: str
    actions: set[str]  # rows by this staff member that name the participant
    data: dict[str, str] = field(default_factory=dict)
    general: set[str] = field(default_factory=set)  # rows by them naming no one in particular


def _calls(pid: int, appointment: int, contact: int, meeting: int) -> dict[tuple[str, str],
                                                                          Call]:
    """Return a request for every participant-data route, in an order that works."""
    calls = {("POST", "/staff/broadcasts/new"): Call(  # first: they still chose the meeting
        "POST", "/staff/broadcasts/new", set(), general={"broadcast_sent"}, data={
            "audience": "meeting", "meeting": str(meeting), "miles": "5", "near": "",
            "region": "", "text": "Longton Monday is at 7pm this week.", "expected": "1",
            "step": "send"}),
             ("GET", "/staff/participants"):
             Call("GET", "/staff/participants", {"participant_read"}),
             ("POST", "/staff/participants/new"): Call(
                 "POST", "/staff/participants/new", set(), general={"enrol"},
                 data=enrolment(name="Kim", channel="telegram", phone="", prison="HMP Test"))}
    for suffix in PARTICIPANT_GETS:
        calls["GET", f"/staff{P}{suffix}"] = Call(
            "GET", f"/staff/participants/{pid}{suffix}", {"participant_read"})
    ids = {"appointment_id": appointment, "contact_id": contact, "meeting_id": meeting}
    for (suffix, data), template in zip(posts(appointment, contact, meeting),
                                        PARTICIPANT_POST_ACTIONS, strict=True):
        calls["POST", f"/staff{P}{template}"] = Call(
            "POST", f"/staff/participants/{pid}{suffix}",
            {"participant_change", PARTICIPANT_POST_ACTIONS[template]}, data=data)
        assert suffix == template.format(**ids)
    calls["POST", f"/staff{P}/card.pdf"] = Call(
        "POST", f"/staff/participants/{pid}/card.pdf", {"participant_change", "card_printed"})
    calls["GET", "/staff/reports"] = Call("GET", "/staff/reports", {"participant_read"})
    calls["GET", "/staff/reports.csv"] = Call("GET", "/staff/reports.csv",
                                              {"participant_read"}, general={"report_export"})
    return calls


def _walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Yield every API route with its full path, into included routers too."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):  # FastAPI keeps included routers nested
            yield from _walk(route.original_router.routes,
                             prefix + route.include_context.prefix)


def staff_routes(web: FastAPI) -> set[tuple[str, str]]:
    """Return (method, path) of every staff console route."""
    return {(method, path) for path, route in _walk(web.routes)
            if path.startswith("/staff") for method in route.methods or ()}


async def _make_reachable(engine: AsyncEngine, pid: int) -> None:
    """Link and activate them, so a broadcast reaches them."""
    async with session_scope(engine) as session:
        p = await session.get(Participant, pid)
        assert p is not None
        p.status, p.consent_at = ParticipantStatus.ACTIVE, NOW - timedelta(days=1)
        session.add(p)
        session.add(ChannelIdentity(participant_id=pid, channel=Channel.SMS,
                                    address="+447700900555"))


async def _fail_broadcast(engine: AsyncEngine) -> int:
    """Mark the broadcast's message failed (so they are on "who to ring"); return its id."""
    async with session_scope(engine) as session:
        row = (await session.exec(select(OutboundMessage).where(
            col(OutboundMessage.broadcast_id).is_not(None)))).one()
        row.status, row.error = OutboxStatus.FAILED, "21211 invalid number"
        session.add(row)
        assert row.broadcast_id is not None
        return row.broadcast_id


async def _new_rows(engine: AsyncEngine, after: int) -> list[AuditEvent]:
    async with session_scope(engine) as session:
        return list((await session.exec(select(AuditEvent).where(
            col(AuditEvent.id) > after).order_by(col(AuditEvent.id)))).all())


async def _check(browser: httpx.AsyncClient, engine: AsyncEngine, call: Call, *, token: str,
                  actor: str, pid: int, last: int) -> int:
    """Make the request; assert it wrote its rows; return the newest audit id."""
    if call.method == "GET":
        response = await browser.get(call.url)
    else:
        response = await browser.post(call.url, data={"csrf_token": token, **call.data})
    assert response.status_code in (200, 303), (call.url, response.status_code)
    rows = [r for r in await _new_rows(engine, last) if r.actor == actor]
    assert call.actions <= {r.action for r in rows if r.participant_id == pid}, \
        (call.method, call.url, rows)
    assert call.general <= {r.action for r in rows}, (call.method, call.url, rows)
    return max([last, *(r.id or 0 for r in await _new_rows(engine, last))])


async def test_every_staff_route_is_classified(app: FastAPI) -> None:  # noqa: F811
    calls = _calls(1, 1, 1, 1)
    extra = ("GET", "/staff/broadcasts/{broadcast_id}"), \
        ("GET", "/staff/broadcasts/{broadcast_id}.csv")
    known = set(calls) | set(NOT_PARTICIPANT_DATA) | set(extra)
    unclassified = staff_routes(app) - known
    assert not unclassified, f"say what these routes audit (ROUTES) or why not: {unclassified}"
    assert known - staff_routes(app) == set(), "a listed route is gone: remove it here"


async def test_each_participant_data_route_writes_its_audit_row(
        client: httpx.AsyncClient, staff_login: StaffLogin,  # noqa: F811
        engine: AsyncEngine) -> None:
    pid, appointment, contact, meeting = await _their_plan(engine, "HMP Test")
    await _make_reachable(engine, pid)
    me = await staff_login(client, role="admin")
    actor = f"staff:{me.staff_id}"
    token = read_page((await client.get("/staff/")).text).csrf
    last = max([0, *(r.id or 0 for r in await _new_rows(engine, 0))])
    for call in _calls(pid, appointment, contact, meeting).values():
        last = await _check(client, engine, call, token=token, actor=actor, pid=pid,
                            last=last)
    broadcast_id = await _fail_broadcast(engine)
    for url, actions in ((f"/staff/broadcasts/{broadcast_id}", {"participant_read"}),
                         (f"/staff/broadcasts/{broadcast_id}.csv",
                          {"participant_read", "broadcast_export"})):
        last = await _check(client, engine, Call("GET", url, actions & {"participant_read"},
                                                 general=actions), token=token,
                            actor=actor, pid=pid, last=last)

"""Enrolling on the staff pages (the CLI's rules, every problem shown where it is) and the
caseload: a Champion's own prison only, and never a full mobile number on any page.
"""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.consent import current_wording
from handlers.engine import handle_inbound
from handlers.types import EngineContext
from storage.db import session_scope
from storage.models import AuditEvent, Participant
from storage.participants import redeem_link_code
from tests.auxil.builders import make_inbound
from tests.auxil.enrolling import MOBILE, NEW, enrol_on_page, enrolment
from tests.auxil.tables import read_tables
from tests.auxil.web import read_page, submit
from tests.web.conftest import NOW, StaffLogin
from tests.web.test_roles_scope_audit import enrol_at

FULL_NUMBER_FORMS = ("+447400123456", "447400123456", "07400123456", "07400 123456",
                     "7400 123456", "7400123456")


async def _participants(engine: AsyncEngine) -> list[Participant]:
    async with session_scope(engine) as session:
        return list((await session.exec(select(Participant))).all())


async def test_enrolling_shows_the_code_once_and_records_who_and_what_was_agreed(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    me = await staff_login(client)
    enrolled = await enrol_on_page(client, name="Sam", review=True, sessions="4")
    page = read_page(enrolled.html)
    assert page.h1 == "Sam is enrolled"
    assert page.links["Print their release card"] == (
        f"/staff/participants/{enrolled.participant_id}/card")
    (p,) = await _participants(engine)
    assert (p.id, p.enrolled_by, p.display_name, p.release_date) == (
        enrolled.participant_id, me.staff_id, "Sam", date(2026, 12, 10))
    assert (p.consent_wording_version, p.consent_recorded_at, p.consent_recorded_by) == (
        current_wording().version, NOW, me.staff_id)
    assert p.staff_review_consent and p.sessions_inside == 4 and p.phone == "+447400123456"
    async with session_scope(engine) as session:
        assert (await redeem_link_code(session, code=enrolled.code, now=NOW)).id == p.id
    plan = (await client.get(f"/staff/participants/{p.id}")).text
    assert enrolled.code not in plan and enrolled.code.replace("-", "") not in plan


async def test_telegram_needs_no_mobile_number(client: httpx.AsyncClient,
                                               staff_login: StaffLogin,
                                               engine: AsyncEngine) -> None:
    await staff_login(client)
    await enrol_on_page(client, channel="telegram", phone="")
    (p,) = await _participants(engine)
    assert p.phone is None and p.preferred_channel == "telegram"


LATE = NOW.date() - timedelta(days=8)


@pytest.mark.parametrize(("field", "answers", "message"), [
    ("name", {"name": "  "}, "First name must not be empty"),
    ("release_date", {"release": LATE},
     f"Release date {LATE.isoformat()} is more than 7 days ago; check the date"),
    ("release_date", {"release_date-day": "31", "release_date-month": "2"},
     "Release date must be a real date, like 27 3 2027"),
    ("release_date", {"release_date-year": ""}, "Release date must include a year"),
    ("postcode", {"area": "Xyzzyquux"}, "Release area not recognised: 'Xyzzyquux'."),
    ("phone", {"phone": "020 7946 0000"},
     "Mobile number must be a UK mobile number (07...), not '020 7946 0000'"),
    ("phone", {"phone": ""}, "Mobile number is needed for SMS (it is optional for Telegram)"),
    ("channel", {"channel": "fax"}, "Channel must be sms or telegram"),
    ("sessions_inside", {"sessions": "lots"}, "Sessions done inside must be a whole number, "
                                              "like 4"),
    ("consent", {"consent": False}, "Consent must be agreed before they can be enrolled"),
])
async def test_each_problem_is_in_the_summary_and_beside_its_field_with_what_was_typed(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine, field: str,
        answers: dict[str, object], message: str) -> None:
    await staff_login(client)
    data = enrolment(**answers)  # type: ignore[arg-type]
    response = await submit(client, NEW, data)
    assert response.status_code == 400
    page = read_page(response.text)
    assert page.title.startswith("Error: ")
    assert page.summary == [(f"#{field}", message)]
    assert page.field_errors[field] == message
    assert page.inputs[field]["id"] == field  # the summary's link lands on the field
    assert page.value_of("First name") == data["name"].strip() or field == "name"
    assert page.value_of("Release area") == data["postcode"]
    assert page.value_of("Mobile number") == data["phone"]
    assert page.value_of("Day") == data["release_date-day"]
    assert await _participants(engine) == []


async def test_every_problem_shows_at_once_in_page_order(client: httpx.AsyncClient,
                                                         staff_login: StaffLogin) -> None:
    await staff_login(client)
    response = await submit(client, NEW, enrolment(
        name="", phone="12345", consent=False, **{"release_date-month": "13"}))
    page = read_page(response.text)
    assert [href for href, _ in page.summary] == [
        "#name", "#release_date", "#phone", "#consent"]
    assert 'checked' not in response.text.split('id="consent"')[1].split(">")[0]


async def test_a_second_enrolment_of_a_mobile_number_is_found(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    await staff_login(client)
    await enrol_on_page(client, name="Sam")
    response = await submit(client, NEW, enrolment(name="Sam", phone="+44 7400 123456"))
    page = read_page(response.text)
    assert page.error_for("Mobile number") == (
        "This mobile number is already enrolled. Find them in the caseload, "
        "or ask an administrator")
    assert len(await _participants(engine)) == 1


async def test_the_caseload_is_the_champions_own_prison_and_each_look_is_audited(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    me = await staff_login(client, prison="HMP Test")
    ours = (await enrol_on_page(client, name="Sam")).participant_id
    theirs = await enrol_at(engine, "HMP Elsewhere", "Jo")
    tables = read_tables((await client.get("/staff/participants")).text)
    rows = tables["People enrolled, soonest release first"]
    assert rows == [["Name", "Release date", "Channel", "Status"],
                    ["Sam", "10 Dec 2026", "SMS", "Not linked yet"]]
    async with session_scope(engine) as session:
        reads = (await session.exec(select(AuditEvent).where(
            AuditEvent.detail == {"page": "/staff/participants"}))).all()
    assert [(e.participant_id, e.actor) for e in reads] == [(ours, f"staff:{me.staff_id}")]
    assert theirs != ours


async def test_admins_name_the_prison_and_see_every_prison(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    await enrol_at(engine, "HMP Elsewhere", "Jo")
    await staff_login(client, role="admin")
    refused = await submit(client, NEW, enrolment(name="Ali", phone="07400 654321"))
    assert read_page(refused.text).error_for("Prison") == "Prison must not be empty"
    await enrol_on_page(client, name="Ali", phone="07400 654321", prison="HMP Leeds")
    rows = read_tables((await client.get("/staff/participants")).text)[
        "People enrolled, soonest release first"]
    assert [(r[0], r[1]) for r in rows[1:]] == [("Jo", "HMP Elsewhere"), ("Ali", "HMP Leeds")]


async def test_coordinators_have_no_caseload_and_cannot_enrol(
        client: httpx.AsyncClient, staff_login: StaffLogin) -> None:
    await staff_login(client, role="coordinator")
    assert (await client.get("/staff/participants")).status_code == 403
    assert (await client.get(NEW)).status_code == 403


async def test_no_page_shows_a_full_mobile_number_or_a_linked_address(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    await staff_login(client)
    enrolled = await enrol_on_page(client, phone=MOBILE)
    pid = enrolled.participant_id
    async with session_scope(engine) as session:  # they link by text, and by Telegram too
        ctx = EngineContext(now=NOW)
        await handle_inbound(session, make_inbound(enrolled.code, address="+447400123456"), ctx)
        await handle_inbound(session, make_inbound("YES", address="+447400123456"), ctx)
    base = f"/staff/participants/{pid}"
    pages = [enrolled.html, *[(await client.get(path)).text for path in (
        "/staff/participants", base, f"{base}/release-date", f"{base}/released",
        f"{base}/meetings", f"{base}/appointments/new", f"{base}/contacts/new")]]
    pages.append((await submit(client, f"{base}/code", {}, form_page=base)).text)
    for html in pages:
        assert not any(number in html for number in FULL_NUMBER_FORMS), html[:300]
    plan = read_page(pages[2])
    assert "07*** ***456" in pages[2] and plan.h1 == "Sam"
    assert "Linked and agreed by text (linked by SMS)" in pages[2]

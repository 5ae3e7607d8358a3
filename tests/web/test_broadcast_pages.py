"""The broadcast pages: audience, preview, confirm, the delivery report and who to ring.

The world: two defined regions (Stoke by ST postcodes, Leeds by LS). In Stoke, Ann (SMS) and
Ben (Telegram) from HMP Stoke Heath and Cat (SMS) from HMP Drake Hall chose Hanley Tuesday;
Dan (SMS) from HMP Leeds lives in Leeds and chose Leeds Wednesday.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.channels.render import render_sms, sms_segments
from bot.channels.sms import TwilioSender
from bot.web.staff.broadcasts import count_hint, csv_cell, sms_preview
from scheduler.clock import SimClock
from scheduler.dispatcher import dispatch
from scheduler.ratelimit import ChannelLimit, Level, MemoryBudget, Rate, RateLimiter
from storage.audit_q import staff_actions_by
from storage.db import session_scope
from storage.models import (
    Broadcast,
    Channel,
    ChannelIdentity,
    Meeting,
    OutboundMessage,
    ParticipantStatus,
)
from storage.participants import enrol
from storage.regions_q import create_region
from storage.subscriptions import subscribe
from tests.auxil.tables import read_tables
from tests.auxil.web import read_page, submit
from tests.bot.conftest import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER, PUBLIC, make_settings
from tests.fakes.twilio_api import FakeTwilio
from tests.scheduler.conftest import FakeProvider
from tests.web.conftest import NOW, StaffLogin

NEW = "/staff/broadcasts/new"
CAT_PHONE = "+447700900103"
EMOJI_TEXT = ("Hanley Tuesday moves to the library from next week. Same time. "
              "See you there \U0001F44D")


@dataclass
class World:
    ids: dict[str, int]
    meetings: dict[str, int]


async def _person(engine: AsyncEngine, name: str, *, prison: str, postcode: str,
                  lat: float, lon: float, channel: str, address: str,
                  meeting: int) -> int:
    async with session_scope(engine) as s:
        p, _code = await enrol(s, prison_name=prison, display_name=name,
                               release_date=date(2026, 11, 1), release_postcode=postcode,
                               now=NOW - timedelta(days=40), release_lat=lat, release_lon=lon,
                               phone=address if channel == "sms" else None, channel=channel)
        p.status, p.consent_at = ParticipantStatus.ACTIVE, NOW - timedelta(days=20)
        s.add(p)
        assert p.id is not None
        s.add(ChannelIdentity(participant_id=p.id, channel=Channel(channel), address=address))
        await subscribe(s, participant_id=p.id, meeting_id=meeting, now=NOW - timedelta(days=9))
        return p.id


@pytest.fixture
async def world(engine: AsyncEngine) -> World:
    async with session_scope(engine) as s:
        await create_region(s, name="Stoke", now=NOW, postcodes=["ST"])
        await create_region(s, name="Leeds", now=NOW, postcodes=["LS"])
        hanley = Meeting(timezone="Europe/London", slug="hanley-tue", name="Hanley Tuesday",
                         weekday=1, start_time=time(18), postcode="ST1 1AA", lat=53.025,
                         lon=-2.175)
        leeds = Meeting(timezone="Europe/London", slug="leeds-wed", name="Leeds Wednesday",
                        weekday=2, start_time=time(18), postcode="LS1 1AA", lat=53.80,
                        lon=-1.55)
        s.add_all([hanley, leeds])
        await s.flush()
        meetings = {"hanley": hanley.id or 0, "leeds": leeds.id or 0}
    stoke: dict[str, Any] = {"prison": "HMP Stoke Heath", "postcode": "ST3 2QH", "lat": 53.0,
                             "lon": -2.15, "meeting": meetings["hanley"]}
    ids = {
        "Ann": await _person(engine, "Ann", channel="sms", address="+447700900101", **stoke),
        "Ben": await _person(engine, "Ben", channel="telegram", address="5550102", **stoke),
        "Cat": await _person(engine, "Cat", channel="sms", address=CAT_PHONE,
                             **{**stoke, "prison": "HMP Drake Hall"}),
        "Dan": await _person(engine, "Dan", channel="sms", address="+447700900104",
                             prison="HMP Leeds", postcode="LS6 1AA", lat=53.82, lon=-1.57,
                             meeting=meetings["leeds"]),
    }
    return World(ids, meetings)


def _form(**chosen: str) -> dict[str, str]:
    return {"audience": "meeting", "meeting": "", "miles": "5", "near": "", "region": "",
            "text": "Hanley Tuesday is at 7pm this week.", **chosen}


async def _preview(client: httpx.AsyncClient, **chosen: str) -> httpx.Response:
    return await submit(client, NEW, {**_form(**chosen), "step": "preview"})


async def _send(client: httpx.AsyncClient, **chosen: str) -> int:
    """Preview, then press the page's "Send to N people" with the values it carries."""
    shown = await _preview(client, **chosen)
    assert shown.status_code == 200, shown.text
    page = read_page(shown.text)
    total = next(b for b in page.buttons if b.startswith("Send to")).split()[2]
    sent = await client.post(NEW, data={"csrf_token": page.csrf, **_form(**chosen),
                                        "expected": total, "step": "send"})
    assert sent.status_code == 303, sent.text
    return int(sent.headers["location"].rsplit("/", 1)[1])


async def _broadcasts(engine: AsyncEngine) -> tuple[list[Broadcast], list[OutboundMessage]]:
    async with session_scope(engine) as s:
        return (list((await s.exec(select(Broadcast))).all()),
                list((await s.exec(select(OutboundMessage))).all()))


async def test_the_form_offers_only_meetings_in_scope_and_the_coordinators_region(
        client: httpx.AsyncClient, staff_login: StaffLogin, world: World) -> None:
    await staff_login(client, role="coordinator", region="Stoke")
    response = await client.get(NEW)
    page = read_page(response.text)
    assert page.h1 == "New broadcast"
    for label in ("Subscribers of a meeting", "People near a meeting or place", "A region",
                  "Meeting", "Miles", "Meeting, postcode or town", "Message"):
        assert label in page.labels
    assert "Hanley Tuesday" in response.text and "Leeds Wednesday" not in response.text
    assert "Your region: Stoke" in response.text and 'value="Leeds"' not in response.text
    assert '<script src="/staff/static/broadcast.js"' in response.text  # no inline script
    assert (await client.get("/staff/static/broadcast.js")).status_code == 200


async def test_preview_shows_each_audience_per_channel_and_sends_nothing(
        client: httpx.AsyncClient, staff_login: StaffLogin, world: World,
        engine: AsyncEngine) -> None:
    await staff_login(client, role="coordinator", region="Stoke")
    cases = [
        ({"meeting": str(world.meetings["hanley"])}, "Subscribers of Hanley Tuesday"),
        ({"audience": "near", "near": "Hanley Tuesday", "miles": "5"},
         "People within 5 miles of Hanley Tuesday"),
        ({"audience": "near", "near": "ST1 1AA", "miles": "3.5"},
         "People within 3.5 miles of ST1 1AA"),
        ({"audience": "region", "region": "Leeds"}, "Everyone in the Stoke region"),  # own only
    ]
    for chosen, described in cases:
        response = await _preview(client, **chosen)
        assert response.status_code == 200, (chosen, response.text)
        page = read_page(response.text)
        assert page.h1 == "Check your broadcast"
        assert described in response.text
        tables = response.text.replace("\n", " ")
        assert ">SMS</dt>" in tables and ">Telegram</dt>" in tables
        assert "Send to 3 people" in page.buttons, chosen
    bigger = await _preview(client, audience="near", near="ST1 1AA", miles="100")
    assert "Send to 4 people" in read_page(bigger.text).buttons  # Dan in Leeds too
    assert await _broadcasts(engine) == ([], [])


async def test_send_needs_the_confirm_step_and_an_unchanged_audience(
        client: httpx.AsyncClient, staff_login: StaffLogin, world: World,
        engine: AsyncEngine) -> None:
    me = await staff_login(client, role="coordinator", region="Stoke")
    chosen = {"meeting": str(world.meetings["hanley"])}
    token = read_page((await client.get(NEW)).text).csrf
    for extra in ({}, {"step": "send"}, {"step": "send", "expected": "2"}):
        response = await client.post(NEW, data={"csrf_token": token, **_form(**chosen),
                                                **extra})
        assert response.status_code == 200 and "Send to 3 people" in response.text
    assert "Who it goes to changed" in response.text
    assert await _broadcasts(engine) == ([], [])
    broadcast_id = await _send(client, **chosen)
    rows, queued = await _broadcasts(engine)
    assert [(b.id, b.staff_id, b.region, b.audience_count) for b in rows] == [
        (broadcast_id, me.staff_id, "Stoke", 3)]
    assert sorted(m.participant_id or 0 for m in queued) == sorted(
        world.ids[n] for n in ("Ann", "Ben", "Cat"))
    async with session_scope(engine) as s:
        actions = [e.action for e in await staff_actions_by(s, me.staff_id)]
    assert "broadcast_sent" in actions


async def test_an_empty_audience_says_so_and_offers_no_send(
        client: httpx.AsyncClient, staff_login: StaffLogin, world: World) -> None:
    await staff_login(client, role="coordinator", region="Stoke")
    response = await _preview(client, audience="near", near="Hanley Tuesday", miles="0.1")
    page = read_page(response.text)
    assert "Nobody in this audience can be reached" in response.text
    assert not [b for b in page.buttons if b.startswith("Send to")]


@pytest.mark.parametrize(("chosen", "label", "message"), [
    ({"text": ""}, "Message", "Enter the message"),
    ({"text": "x" * 2001}, "Message", "Message must be 640 characters or fewer (it has 2001)"),
    ({"text": "Hello\x07 there"}, "Message", "hidden or control character"),
    ({"audience": "near", "near": "ST1 1AA", "miles": "0"}, "Miles", "more than 0"),
    ({"audience": "near", "near": "ST1 1AA", "miles": "999"}, "Miles", "at most 200"),
    ({"audience": "near", "near": "ST1 1AA", "miles": "five"}, "Miles", "must be a number"),
    ({"audience": "near", "near": ""}, "Meeting, postcode or town", "Enter a meeting"),
    ({"audience": "near", "near": "Nowhereville Xq"}, "Meeting, postcode or town",
     "Cannot find a meeting or place called 'Nowhereville Xq'"),
    ({"meeting": ""}, "Meeting", "Choose a meeting"),
    ({"meeting": "abc"}, "Meeting", "Choose a meeting"),
    ({"audience": "everyone"}, "Subscribers of a meeting", "Choose who should get"),
])
async def test_bad_input_is_shown_beside_the_field(
        client: httpx.AsyncClient, staff_login: StaffLogin, world: World, engine: AsyncEngine,
        chosen: dict[str, str], label: str, message: str) -> None:
    await staff_login(client, role="coordinator", region="Stoke")
    base = {"meeting": str(world.meetings["hanley"])}
    response = await _preview(client, **{**base, **chosen})
    assert response.status_code == 400, response.text
    page = read_page(response.text)
    assert message in page.error_for(label), page.field_errors
    assert page.summary and page.title.startswith("Error:")
    if chosen.get("text"):
        assert page.inputs.get("text") is None  # a textarea, kept as typed:
        assert chosen["text"][:50].replace("\x07", "") in response.text.replace("\x07", "")
    assert await _broadcasts(engine) == ([], [])


async def test_a_meeting_of_another_region_cannot_be_chosen(
        client: httpx.AsyncClient, staff_login: StaffLogin, world: World) -> None:
    await staff_login(client, role="coordinator", region="Stoke")
    response = await _preview(client, meeting=str(world.meetings["leeds"]))
    assert read_page(response.text).error_for("Meeting") == "Choose a meeting"


async def test_an_admin_chooses_any_defined_region(
        client: httpx.AsyncClient, staff_login: StaffLogin, world: World) -> None:
    await staff_login(client, role="admin")
    response = await _preview(client, audience="region", region="Leeds")
    assert "Everyone in the Leeds region" in response.text
    assert "Send to 1 person" in read_page(response.text).buttons
    refused = await _preview(client, audience="region", region="Atlantis")
    assert read_page(refused.text).error_for("Region") == "Choose a region"


def test_the_count_is_the_senders_count_and_an_emoji_makes_it_unicode() -> None:
    plain = "Hanley Tuesday moves to the library from next week. Same time. See you there!"
    assert count_hint(plain) == f"1 SMS segment ({len(plain)} characters)"
    assert count_hint(EMOJI_TEXT) == f"2 SMS segments ({len(EMOJI_TEXT)} characters)"
    assert count_hint("  ") == "0 SMS segments (0 characters)"
    curly = "It\u2019s on \u2013 " + "a" * 150  # typographic marks are swapped, stay GSM-7
    assert sms_preview(curly).segments == 1 and not sms_preview(curly).unicode
    for text in (plain, EMOJI_TEXT, curly, "[x]" * 60, "a" * 161):
        assert sms_preview(text).segments == sms_segments(render_sms(text))
    assert sms_preview("a" * 161).segments == 2


async def test_preview_shows_the_emoji_count_and_the_text_as_an_sms_shows_it(
        client: httpx.AsyncClient, staff_login: StaffLogin, world: World) -> None:
    await staff_login(client, role="coordinator", region="Stoke")
    meeting = str(world.meetings["hanley"])
    plain = await _preview(client, meeting=meeting, text="It\u2019s at 7pm \u2013 see you")
    assert "1 SMS segment (21 characters)" in plain.text
    assert "It&#39;s at 7pm - see you" in plain.text  # as the phone shows it: GSM-7 marks
    emoji = await _preview(client, meeting=meeting, text=EMOJI_TEXT)
    assert f"2 SMS segments ({len(EMOJI_TEXT)} characters, with characters" in emoji.text


class RecordingBudget(MemoryBudget):
    """The in-memory budget, also noting every charge it took (key, cost)."""

    def __init__(self) -> None:
        super().__init__()
        self.charged: list[tuple[str, float]] = []

    async def take(self, key: str, *, cost: float, rate: Rate, level: Level, now: float,
                   admit: float | None = None) -> float:
        wait = await super().take(key, cost=cost, rate=rate, level=level, now=now, admit=admit)
        if wait == 0.0:
            self.charged.append((key, cost))
        return wait


async def _dispatch(engine: AsyncEngine, twilio: FakeTwilio) -> RecordingBudget:
    sender = TwilioSender.from_settings(make_settings(),
                                        transport=httpx.ASGITransport(twilio.app))
    budget = RecordingBudget()
    limiter = RateLimiter(limits={"sms": ChannelLimit(per_second=100.0, count_segments=True),
                                  "telegram": ChannelLimit(per_second=30.0)},
                          clock=SimClock(), store=budget)
    try:
        await dispatch(engine, {"sms": sender, "telegram": FakeProvider("telegram")},
                       now=NOW + timedelta(minutes=1), limiter=limiter)
    finally:
        await sender.aclose()
    return budget


async def test_the_preview_count_is_what_the_dispatcher_is_charged(
        client: httpx.AsyncClient, staff_login: StaffLogin, world: World,
        engine: AsyncEngine) -> None:
    await staff_login(client, role="coordinator", region="Stoke")
    shown = await _preview(client, meeting=str(world.meetings["hanley"]), text=EMOJI_TEXT)
    assert "2 SMS segments" in shown.text
    await _send(client, meeting=str(world.meetings["hanley"]), text=EMOJI_TEXT)
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, webhook_url=f"{PUBLIC}/sms/inbound",
                        our_number=OUR_NUMBER)
    budget = await _dispatch(engine, twilio)
    assert [cost for key, cost in budget.charged if key == "sms"] == [2.0, 2.0]
    assert [m["num_segments"] for m in twilio.messages] == ["2", "2"]  # what Twilio bills
    _, rows = await _broadcasts(engine)
    assert sorted(m.segments or 0 for m in rows if m.channel == "sms") == [2, 2]


async def _report_after_one_failure(client: httpx.AsyncClient, engine: AsyncEngine,
                                    world: World) -> int:
    broadcast_id = await _send(client, meeting=str(world.meetings["hanley"]))
    before = read_page((await client.get(f"/staff/broadcasts/{broadcast_id}")).text)
    assert before.h1 == "Broadcast of 26 Nov 2026, 12:00pm"
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, webhook_url=f"{PUBLIC}/sms/inbound",
                        our_number=OUR_NUMBER, invalid_numbers={CAT_PHONE})
    await _dispatch(engine, twilio)
    assert [m["to"] for m in twilio.messages] == ["+447700900101"]
    return broadcast_id


def _delivery(html: str) -> dict[str, str]:
    part = html.split('id="delivery"', 1)[1].split("</dl>", 1)[0]
    keys = [k.split("</dt>")[0].rsplit(">", 1)[1] for k in part.split("<dt")[1:]]
    vals = [v.split("</dd>")[0].rsplit(">", 1)[1] for v in part.split("<dd")[1:]]
    return dict(zip(keys, vals, strict=True))


async def test_the_report_fills_in_and_an_admin_sees_who_to_ring(
        client: httpx.AsyncClient, new_client: object, staff_login: StaffLogin,
        world: World, engine: AsyncEngine) -> None:
    await staff_login(client, role="coordinator", region="Stoke")
    broadcast_id = await _report_after_one_failure(client, engine, world)
    path = f"/staff/broadcasts/{broadcast_id}"
    mine = await client.get(path)
    assert _delivery(mine.text) == {"Waiting to send": "0", "Sent": "2", "Delivered": "0",
                                    "Failed": "1"}
    assert "The number is not a valid phone number: 1" in mine.text
    assert "1 person outside your caseload" in mine.text and "Cat" not in mine.text
    by_prison = read_tables(mine.text)
    assert ["HMP Drake Hall", "1"] in next(t for t in by_prison.values()
                                           if t[0] == ["Champion's prison",
                                                       "People whose message failed"])
    their_csv = list(csv.reader(io.StringIO((await client.get(f"{path}.csv")).text)))
    assert their_csv[1:] == [["1 outside your caseload", "HMP Drake Hall", "", ""]]
    listed = read_tables((await client.get("/staff/broadcasts")).text)
    assert listed["Broadcasts, newest first"][1][2:] == ["3", "0", "2", "0", "1"]

    admin_client = await new_client()  # type: ignore[operator]
    admin = await staff_login(admin_client, role="admin")
    shown = await admin_client.get(path)
    ring = read_tables(shown.text)["People whose message failed, with their Champion's prison"]
    assert ring == [["First name", "Prison", "Channel", "What happened"],
                    ["Cat", "HMP Drake Hall", "SMS", "The number is not a valid phone number"]]
    assert "outside your caseload" not in shown.text
    download = await admin_client.get(f"{path}.csv")
    assert download.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(download.text))) == ring
    async with session_scope(engine) as s:
        reads = [e for e in await staff_actions_by(s, admin.staff_id)
                 if e.action == "participant_read"]
    assert [e.participant_id for e in reads] == [world.ids["Cat"]] * 2


async def test_a_coordinator_of_another_region_gets_not_found(
        client: httpx.AsyncClient, new_client: object, staff_login: StaffLogin,
        world: World) -> None:
    await staff_login(client, role="coordinator", region="Stoke")
    broadcast_id = await _send(client, meeting=str(world.meetings["hanley"]))
    other = await new_client()  # type: ignore[operator]
    await staff_login(other, role="coordinator", region="Leeds", email="leeds@example.org")
    for path in (f"/staff/broadcasts/{broadcast_id}", f"/staff/broadcasts/{broadcast_id}.csv",
                 "/staff/broadcasts/999999", "/staff/broadcasts/abc"):
        assert (await other.get(path)).status_code == 404, path
    listed = await other.get("/staff/broadcasts")
    assert read_page(listed.text).h1 == "Broadcasts" and "No broadcasts yet." in listed.text
    champion = await new_client()  # type: ignore[operator]
    await staff_login(champion, role="champion", email="champ@example.org")
    assert (await champion.get(f"/staff/broadcasts/{broadcast_id}")).status_code == 403
    assert (await champion.get(NEW)).status_code == 403


def test_csv_cells_cannot_be_formulas() -> None:
    assert [csv_cell(v) for v in ("=SUM(A1)", "+1", "-2", "@x", "Cat", "")] == [
        "'=SUM(A1)", "'+1", "'-2", "'@x", "Cat", ""]


async def test_a_coordinators_undefined_region_is_explained(
        client: httpx.AsyncClient, staff_login: StaffLogin, world: World) -> None:
    await staff_login(client, role="coordinator", region="Wales")
    response = await _preview(client, audience="region", region="Stoke")
    assert response.status_code == 400
    assert read_page(response.text).field_errors["region"] == (
        "Wales is not a defined region yet: ask an administrator to define it")

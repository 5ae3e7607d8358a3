"""The coordinators' meeting pages: the list and search in their region, adding and editing
(places found offline, join links and dial-ins checked), and changes that tell the people who
chose a meeting once: cancelling one date, moving it, suspending, resuming, cancelling it.

Forms are filled by their labels; what is checked is what can be seen: the page, the outbox
rows each person would get, the meeting row and the audit trail.
"""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from scheduler.planning import plan
from storage.db import session_scope
from storage.models import (
    AuditEvent,
    Meeting,
    MeetingStatus,
    MessageKind,
    OutboundMessage,
    OutboxStatus,
)
from storage.subscriptions import subscribe
from tests.auxil.tables import read_tables
from tests.auxil.web import Page, read_page, submit
from tests.scheduler.conftest import add_person, rows
from tests.web.conftest import NOW, Clock, StaffLogin

REGION = "Stoke-on-Trent"
TUESDAY = "Tuesday 1 December 2026"  # the first Tuesday after NOW (Thursday 26 November)
LIST = "/staff/meetings"


async def _meeting(engine: AsyncEngine, **values: Any) -> int:
    fields: dict[str, Any] = {
        "slug": "hanley-tue", "name": "Hanley SMART", "weekday": 1, "start_time": time(18),
        "end_time": time(19, 30), "timezone": "Europe/London", "venue": "Hope Centre",
        "address": "1 Town Road, Hanley", "postcode": "ST1 1HE", "region": REGION,
        "lat": 53.0245, "lon": -2.1750, **values}
    async with session_scope(engine) as session:
        meeting = Meeting(**fields)
        session.add(meeting)
        await session.flush()
        return meeting.id or 0


async def _chosen_by(engine: AsyncEngine, mid: int, *names: str, first: int = 1) -> list[int]:
    """Add people who chose the meeting; return their ids."""
    people = [await add_person(engine, name=name, phone=f"+4477009001{first + i:02d}",
                               discreet=False)  # texts that name the meeting
              for i, name in enumerate(names)]
    async with session_scope(engine) as session:
        for pid in people:
            await subscribe(session, participant_id=pid, meeting_id=mid,
                            now=NOW - timedelta(days=3))
    return people


async def _get(engine: AsyncEngine, mid: int) -> Meeting:
    async with session_scope(engine) as session:
        meeting = await session.get(Meeting, mid)
        assert meeting is not None
        return meeting


async def _audit(engine: AsyncEngine) -> list[AuditEvent]:
    async with session_scope(engine) as session:
        found = await session.exec(select(AuditEvent).order_by(AuditEvent.id))  # type: ignore[arg-type]
        return [e for e in found.all() if e.action.startswith("meeting_")]


def _notices(outbox: list[OutboundMessage]) -> list[OutboundMessage]:
    return [r for r in outbox if (r.meta or {}).get("change")]


def _reminders(outbox: list[OutboundMessage], status: OutboxStatus) -> list[OutboundMessage]:
    return [r for r in outbox if r.kind == MessageKind.REMINDER and r.status == status
            and r.dedupe_key.startswith("rem:")]


async def _page(client: httpx.AsyncClient, path: str) -> Page:
    response = await client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return read_page(response.text)


def fill(page: Page, answers: dict[str, str]) -> dict[str, str]:
    """Return form data for answers keyed by label; a radio's answer is its label ("")."""
    data: dict[str, str] = {}
    for label, answer in answers.items():
        field_id = page.labels[label]
        attrs = page.inputs.get(field_id, {})
        if attrs.get("type") == "radio":
            data[attrs["name"]] = attrs["value"]
        else:
            data[attrs.get("name", field_id)] = answer
    return data


def shown_values(page: Page) -> dict[str, str]:
    """Return what a filled-in form holds (text boxes and chosen radios)."""
    return {a["name"]: a.get("value", "") for a in page.inputs.values()
            if "name" in a and (a.get("type") != "radio" or "checked" in a)}


IN_PERSON = {"Name": "Longton SMART", "Thursday": "", "Start time": "18:30",
             "End time": "20:00", "Time zone": "Europe/London", "In person": "",
             "Venue": "Longton Library", "Address": "Times Square, Longton",
             "Postcode": "ST3 1HE", "Town/region": REGION}
ONLINE = {"Online": "", "Address": "", "Postcode": "", "Venue": ""}


async def _coordinator(client: httpx.AsyncClient, staff_login: StaffLogin) -> None:
    await staff_login(client, role="coordinator", region=REGION, email="stoke@example.org")


async def test_the_list_shows_my_regions_meetings_and_finds_them_by_name_town_or_postcode(
    engine: AsyncEngine, client: httpx.AsyncClient, staff_login: StaffLogin,
) -> None:
    hanley = await _meeting(engine)
    await _meeting(engine, slug="online-wed", name="Evening Online", weekday=2,
                   attendance="online", conference_url="https://zoom.us/j/1", postcode=None,
                   venue=None, address=None, lat=None, lon=None, timezone="America/New_York")
    await _meeting(engine, slug="leeds", name="Leeds SMART", region="Leeds",
                   postcode="LS1 1UR")
    await _chosen_by(engine, hanley, "Sam", "Alex")
    await _coordinator(client, staff_login)
    response = await client.get(LIST)
    page = read_page(response.text)
    assert page.h1 == "Meetings" and page.links["Add a meeting"] == f"{LIST}/new"
    table = read_tables(response.text)["Meetings, by name"]
    assert table[0] == ["Name", "Day and time", "Where", "Status", "Chosen by", "Next date"]
    assert table[1:] == [
        ["Evening Online", "Wednesday 6pm to 7:30pm (America/New_York time)", "Online",
         "Running", "0 people", "Wed 2 Dec, 6pm (America/New_York time)"],
        ["Hanley SMART", "Tuesday 6pm to 7:30pm", "Hope Centre, ST1 1HE", "Running",
         "2 people", "Tue 1 Dec, 6pm"]]
    assert "Leeds SMART" not in response.text
    for query, found in (("hanley", ["Hanley SMART"]), ("st11he", ["Hanley SMART"]),
                         ("STOKE", ["Evening Online", "Hanley SMART"]), ("", None),
                         ("leeds", []), ("x" * 5000, []), ("🙂\x00\x07", []),
                         ("Hope Centre", ["Hanley SMART"])):
        searched = await client.get(LIST, params={"q": query})
        assert searched.status_code == 200
        shown = [r[0] for r in read_tables(searched.text).get("Meetings, by name", [])[1:]]
        assert shown == (found if found is not None else ["Evening Online", "Hanley SMART"])
    assert read_page((await client.get(LIST, params={"q": "hanley"})).text).value_of(
        "Search meetings") == "hanley"


async def test_another_regions_meeting_is_not_found_but_an_admin_sees_it(
    engine: AsyncEngine, client: httpx.AsyncClient, new_client: Any, staff_login: StaffLogin,
) -> None:
    leeds = await _meeting(engine, slug="leeds", name="Leeds SMART", region="Leeds",
                           postcode="LS1 1UR")
    await _chosen_by(engine, leeds, "Sam")
    await _coordinator(client, staff_login)
    base = f"{LIST}/{leeds}"
    for path in (base, f"{base}/edit", f"{base}/cancel-date", f"{base}/cancel-date?day="
                 "2026-12-01", f"{base}/suspend", f"{base}/cancel", f"{base}/resume",
                 f"{LIST}/abc", f"{LIST}/99999999999999999999", f"{LIST}/0", f"{LIST}/-1"):
        refused = await client.get(path)
        assert refused.status_code == 404, path
        assert "Leeds SMART" not in refused.text
    token = read_page((await client.get(LIST)).text).csrf
    for path, data in ((f"{base}/cancel-date", {"day": "2026-12-01"}),
                       (f"{base}/restore-date", {"day": "2026-12-01"}),
                       (f"{base}/suspend", {}), (f"{base}/cancel", {}),
                       (f"{base}/edit", {"name": "Mine now"})):
        refused = await client.post(path, data={"csrf_token": token, **data})
        assert refused.status_code == 404, path
    meeting = await _get(engine, leeds)
    assert meeting.status == MeetingStatus.ACTIVE and meeting.name == "Leeds SMART"
    assert meeting.cancelled_dates == [] and await rows(engine) == []
    assert await _audit(engine) == []
    await _meeting(engine)
    admin, champion = await new_client(), await new_client()
    await staff_login(admin, role="admin", email="admin@example.org")
    await staff_login(champion, role="champion", email="champ@example.org")
    listed = read_tables((await admin.get(LIST)).text)["Meetings, by name"]
    assert [r[0] for r in listed[1:]] == ["Hanley SMART", "Leeds SMART"]
    assert (await admin.get(base)).status_code == 200
    for path in (LIST, f"{LIST}/new", base, f"{base}/suspend"):
        assert (await champion.get(path)).status_code == 403, path


async def test_adding_meetings_shows_where_they_land_and_keeps_how_to_join(
    engine: AsyncEngine, client: httpx.AsyncClient, staff_login: StaffLogin,
) -> None:
    await _coordinator(client, staff_login)
    form = await _page(client, f"{LIST}/new")
    checked = await submit(client, f"{LIST}/new", {**fill(form, IN_PERSON), "preview": "yes"})
    assert checked.status_code == 200 and "Where it lands on the map" in checked.text
    assert "openstreetmap.org/?mlat=52.98" in checked.text
    assert read_page(checked.text).value_of("Postcode") == "ST3 1HE"
    assert await _audit(engine) == []  # only looked
    saved = await submit(client, f"{LIST}/new", fill(form, {
        **IN_PERSON, "Name": "Longton 🙂\x00 SMART\x07", "Notes": "Ring\x00 the bell\nthen wait"}))
    shown = await client.get(saved.headers["location"])
    assert "Where it lands on the map" in shown.text and "ST3 1HE" in shown.text
    assert read_page(shown.text).notice == "Longton 🙂 SMART added."
    online = await submit(client, f"{LIST}/new", fill(form, {
        **IN_PERSON, **ONLINE, "Name": "Online SMART", "Online join link":
        "https://zoom.us/j/123", "Dial-in number": "020 3481 5237,,123#"}))
    assert online.status_code == 303
    async with session_scope(engine) as session:
        room, call = (await session.exec(select(Meeting).order_by(Meeting.id))).all()  # type: ignore[arg-type]
    assert room.lat is not None and 52.9 < room.lat < 53.0 and room.postcode == "ST3 1HE"
    assert (room.address, room.approximate, room.weekday, room.start_time, room.source) == (
        "Times Square, Longton", False, 3, time(18, 30), "console")
    assert room.name == "Longton 🙂 SMART" and room.notes == "Ring the bell\nthen wait"
    assert (call.attendance, call.conference_url, call.conference_phone, call.lat) == (
        "online", "https://zoom.us/j/123", "+442034815237,,123#", None)
    assert [(e.action, (e.detail or {})["meeting_id"]) for e in await _audit(engine)] == [
        ("meeting_create", room.id), ("meeting_create", call.id)]


# (answers by label, raw form fields, the label whose message is checked, its start)
BAD_ANSWERS: list[tuple[dict[str, str], dict[str, str], str, str]] = [
    ({"Postcode": "ZZ9 9ZZ"}, {}, "Postcode", "Postcode ZZ9 9ZZ is not one we can find"),
    ({"Postcode": "not a postcode"}, {}, "Postcode", "Enter a full postcode, like ST1 1HE"),
    ({"Postcode": "", "Address": ""}, {}, "Postcode", "Enter the postcode or the address"),
    ({"Postcode": "LS1 1UR", "Town/region": "Leeds"}, {}, "Postcode", "This place is outside "
     "your region"),
    ({"Name": ""}, {}, "Name", "Enter the meeting's name"),
    ({"Name": "n" * 301}, {}, "Name", "Name must be 300 characters or fewer"),
    ({"Start time": "25:99"}, {}, "Start time", "Start time must be a real time"),
    ({"Start time": ""}, {}, "Start time", "Enter the start time"),
    ({"End time": "17:00"}, {}, "End time", "End time must be after the start time"),
    ({"Time zone": "Mars/Olympus"}, {}, "Time zone", "Time zone must be a real zone name"),
    ({"Time zone": "../../etc/passwd"}, {}, "Time zone", "Time zone must be a real zone"),
    ({"Notes": "x" * 2001}, {}, "Notes", "Notes must be 2000 characters or fewer"),
    ({}, {"weekday": "9"}, "Monday", "Choose the day of the week"),
    ({}, {"weekday": "🙂"}, "Monday", "Choose the day of the week"),
    ({}, {"attendance": "teleport"}, "In person", "Choose how people attend"),
    (ONLINE, {}, "Online join link", "Enter a join link or a dial-in number"),
    ({**ONLINE, "Online join link": "http://zoom.us/j/1"}, {}, "Online join link",
     "Enter the whole join link"),
    ({**ONLINE, "Online join link": "javascript:alert(1)"}, {}, "Online join link",
     "Enter the whole join link"),
    ({**ONLINE, "Dial-in number": "12345"}, {}, "Dial-in number", "Enter a dial-in number"),
    ({**ONLINE, "Dial-in number": "07700 900123"}, {}, "Dial-in number",
     "Enter a dial-in number"),
]


async def test_bad_answers_get_a_message_by_the_field_and_add_nothing(
    engine: AsyncEngine, client: httpx.AsyncClient, staff_login: StaffLogin,
) -> None:
    await _coordinator(client, staff_login)
    form = await _page(client, f"{LIST}/new")
    assert form.h1 == "Add a meeting" and form.value_of("Time zone") == "Europe/London"
    assert form.value_of("Town/region") == REGION
    for answers, raw, label, message in BAD_ANSWERS:
        refused = await submit(client, f"{LIST}/new",
                               {**fill(form, {**IN_PERSON, **answers}), **raw})
        assert refused.status_code == 400, (answers, raw)
        page = read_page(refused.text)
        assert page.error_for(label).startswith(message), (page.field_errors, answers, raw)
        assert page.title.startswith("Error: ")
        assert page.value_of("Dial-in number") == {**IN_PERSON, **answers}.get("Dial-in number",
                                                                            "")
    async with session_scope(engine) as session:
        assert (await session.exec(select(Meeting))).all() == []


async def test_moving_a_meeting_tells_each_person_once_and_other_edits_tell_no_one(
    engine: AsyncEngine, client: httpx.AsyncClient, staff_login: StaffLogin,
) -> None:
    mid = await _meeting(engine)
    people = await _chosen_by(engine, mid, "Sam", "Alex")
    await plan(engine, now=NOW)
    await _coordinator(client, staff_login)
    edit = f"{LIST}/{mid}/edit"
    form = await _page(client, edit)
    assert form.h1 == "Change Hanley SMART" and form.value_of("Start time") == "18:00"
    current = shown_values(form)
    assert current["weekday"] == "1" and current["attendance"] == "in_person"
    notes_only = await submit(client, edit, {**current, "notes": "Side door after 6"})
    assert notes_only.status_code == 303
    assert (await _page(client, notes_only.headers["location"])).notice == \
        "Changes saved. No one needed to be told."
    meeting = await _get(engine, mid)
    assert (meeting.notes, meeting.lat, meeting.lon) == ("Side door after 6", 53.0245, -2.1750)
    assert _notices(await rows(engine)) == []
    moved = await submit(client, edit, {**current, **fill(form, {"Start time": "19:00"})})
    assert moved.status_code == 303
    page = await _page(client, moved.headers["location"])
    assert page.notice == "Changes saved. 2 people were told."
    outbox = await rows(engine)
    notices = _notices(outbox)
    assert sorted(n.participant_id or 0 for n in notices) == sorted(people)
    assert notices[0].body.startswith("Hanley SMART has changed. From now on it is Tue 1 Dec "
                                      "7pm")
    queued = _reminders(outbox, OutboxStatus.QUEUED)  # planned again, at the new time
    assert len(queued) == 4 and {r.meta["occurrence"] for r in queued if r.meta} == {
        "2026-12-01T19:00:00+00:00"}
    actions = [(e.action, (e.detail or {}).get("told")) for e in await _audit(engine)]
    assert actions == [("meeting_edit", 0), ("meeting_edit", 2)]


async def _cancel_tuesday(client: httpx.AsyncClient, mid: int) -> httpx.Response:
    """Follow Cancel one date, choose Tuesday, and confirm, as a coordinator would."""
    show = await _page(client, f"{LIST}/{mid}")
    choose = await _page(client, show.links["Cancel one date"])
    assert choose.h1 == "Which date do you want to cancel?"
    day = fill(choose, {TUESDAY: ""})
    confirm_path = f"{LIST}/{mid}/cancel-date?day={day['day']}"
    confirm = await _page(client, confirm_path)
    assert confirm.h1 == f"Cancel Hanley SMART on {TUESDAY}?"
    assert "Yes, cancel this date" in confirm.buttons
    return await submit(client, f"{LIST}/{mid}/cancel-date", day, form_page=confirm_path)


async def test_cancelling_one_date_texts_each_person_with_a_reminder_once(
    engine: AsyncEngine, client: httpx.AsyncClient, staff_login: StaffLogin,
) -> None:
    mid = await _meeting(engine)
    other = await _meeting(engine, slug="longton-tue", name="Longton SMART",
                           postcode="ST3 1HE")
    people = await _chosen_by(engine, mid, "Sam", "Alex")
    elsewhere = await _chosen_by(engine, other, "Jo", first=7)
    await plan(engine, now=NOW)
    before = _reminders(await rows(engine), OutboxStatus.QUEUED)
    assert len(before) == 6  # three people, the day before and an hour before
    await _coordinator(client, staff_login)
    path = f"{LIST}/{mid}/cancel-date"
    for day in ("2026-12-02", "garbage", "2026-11-24", "9" * 500):
        shown = await client.get(path, params={"day": day})
        assert shown.status_code == 400, day
        assert read_page(shown.text).field_errors["day"].startswith("Choose one of the coming")
    for day, message in (("2026-12-02", "2 December 2026 is a Wednesday"),
                         ("2026-11-24", "That date has already started or passed"),
                         ("", "Choose the date to cancel")):
        refused = await submit(client, path, {"day": day})
        assert refused.status_code == 400, day
        assert read_page(refused.text).field_errors["day"].startswith(message), day
    done = await _cancel_tuesday(client, mid)
    assert done.status_code == 303 and done.headers["location"] == f"{LIST}/{mid}"
    shown = await client.get(done.headers["location"])
    assert read_page(shown.text).notice == \
        f"Hanley SMART on {TUESDAY} is cancelled. 2 people were told."
    dates = read_tables(shown.text)["The next 6 dates of this meeting"]
    assert dates[1][:2] == [TUESDAY, "Cancelled"] and dates[2][1] == "Yes"
    outbox = await rows(engine)
    notices = _notices(outbox)
    assert sorted(n.participant_id or 0 for n in notices) == sorted(people)  # one text each
    assert notices[0].body == ("Sorry, Hanley SMART on Tue 1 Dec 6pm is not running. "
                               "Send MEETINGS to find another.")
    cancelled = {r.id for r in outbox if r.status == OutboxStatus.CANCELLED}
    assert cancelled == {r.id for r in before if r.meeting_id == mid}
    assert {r.participant_id for r in _reminders(outbox, OutboxStatus.QUEUED)} == \
        set(elsewhere)

    token = read_page(shown.text).csrf  # a second click, from a page left open
    again = await client.post(f"{LIST}/{mid}/cancel-date",
                              data={"csrf_token": token, "day": "2026-12-01"})
    assert again.status_code == 303
    assert "already cancelled" in (await _page(client, f"{LIST}/{mid}")).notice
    await plan(engine, now=NOW + timedelta(minutes=5))
    assert len(_notices(await rows(engine))) == 2  # nothing more said
    assert (await _get(engine, mid)).cancelled_dates == ["2026-12-01"]

    restored = await client.post(f"{LIST}/{mid}/restore-date",
                                 data={"csrf_token": token, "day": "2026-12-01"})
    assert restored.status_code == 303
    assert "is back on" in (await _page(client, f"{LIST}/{mid}")).notice
    assert (await _get(engine, mid)).cancelled_dates == []
    actions = [(e.action, (e.detail or {}).get("day"), (e.detail or {}).get("told"))
               for e in await _audit(engine)]
    assert actions == [("meeting_cancel_date", "2026-12-01", 2),
                       ("meeting_restore_date", "2026-12-01", None)]


async def test_suspending_resuming_and_cancelling_for_good_tell_each_person_once_each(
    engine: AsyncEngine, client: httpx.AsyncClient, staff_login: StaffLogin, clock: Clock,
) -> None:
    mid = await _meeting(engine)
    await _chosen_by(engine, mid, "Sam", "Alex")
    await plan(engine, now=NOW)
    await _coordinator(client, staff_login)
    show = await _page(client, f"{LIST}/{mid}")
    suspend = show.links["Suspend this meeting"]
    confirm = await _page(client, suspend)
    assert confirm.h1 == "Suspend Hanley SMART?" and "Yes, suspend it" in confirm.buttons
    done = await submit(client, suspend, {})
    page = await _page(client, done.headers["location"])
    assert page.notice == "Hanley SMART is suspended. 2 people were told."
    assert "Resume this meeting" in page.links and "Suspend this meeting" not in page.links
    assert (await _get(engine, mid)).status == MeetingStatus.SUSPENDED
    assert _reminders(await rows(engine), OutboxStatus.QUEUED) == []
    token = page.csrf
    again = await client.post(suspend, data={"csrf_token": token})
    assert "nothing changed" in (await _page(client, again.headers["location"])).notice
    assert len(_notices(await rows(engine))) == 2
    listed = read_tables((await client.get(LIST)).text)["Meetings, by name"]
    assert listed[1][3] == "Suspended" and listed[1][5] == "None: suspended"

    resumed = await submit(client, page.links["Resume this meeting"], {})
    assert (await _page(client, resumed.headers["location"])).notice == \
        "Hanley SMART is running again. 2 people were told."
    assert (await _get(engine, mid)).status == MeetingStatus.ACTIVE
    assert len(_notices(await rows(engine))) == 4

    clock.advance(minutes=10)
    path = (await _page(client, f"{LIST}/{mid}")).links["Cancel this meeting for good"]
    assert (await _page(client, path)).h1 == "Cancel Hanley SMART for good?"
    done = await submit(client, path, {})
    page = await _page(client, done.headers["location"])
    assert page.notice == "Hanley SMART is cancelled for good. 2 people were told."
    assert "Cancel this meeting for good" not in page.links
    assert (await _get(engine, mid)).status == MeetingStatus.CANCELLED
    outbox = await rows(engine)
    assert _reminders(outbox, OutboxStatus.QUEUED) == [] and len(_notices(outbox)) == 6
    assert _notices(outbox)[-1].body.startswith("Sorry, Hanley SMART has stopped running.")
    assert [e.action for e in await _audit(engine)] == [
        "meeting_suspend", "meeting_resume", "meeting_cancel"]

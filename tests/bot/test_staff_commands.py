"""Coordinators' commands on Telegram, through the real webhook, python-telegram-bot and the
fake Bot API: link with a console code, /meetings (confirm or suspend) and /broadcast.

The coordinator is a second person in their own private chat with the bot; Sam (the stack's
user) is a participant. Meetings in Stoke are the coordinator's; Leeds's are not.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from handlers.texts import t
from storage.db import session_scope
from storage.models import (
    AttendanceOutcome,
    AttendanceRecord,
    AuditEvent,
    Meeting,
    MeetingStatus,
    MessageKind,
    OutboundMessage,
    StaffRole,
    StaffUser,
)
from storage.staff_telegram_q import issue_staff_link_code
from storage.subscriptions import subscribe
from tests.auxil.builders import enrolled_participant
from tests.auxil.web import read_page
from tests.bot.conftest import NOW, Enrolled, Stack
from tests.fakes.telegram_api import FakeTelegramUser
from tests.web.conftest import make_staff, sign_in

COORDINATOR_CHAT = 515151
SUB_PHONE = "+447700900555"
SUB_CHAT = "818181"
_slugs = itertools.count(1)


async def add_meeting(engine: AsyncEngine, name: str, region: str) -> int:
    """Add an active Tuesday 6pm meeting in a region; return its id."""
    async with session_scope(engine) as session:
        meeting = Meeting(slug=f"staff-cmd-{next(_slugs)}", name=name, weekday=1,
                          start_time=time(18), timezone="Europe/London", region=region,
                          venue="Library", postcode="ST1 3RS", lat=53.02, lon=-2.18)
        session.add(meeting)
        await session.flush()
        assert meeting.id is not None
        return meeting.id


async def add_subscribers(engine: AsyncEngine, meeting_id: int) -> list[int]:
    """Two linked, consenting people (one by SMS, one on Telegram) who chose a meeting."""
    ids = []
    async with session_scope(engine) as session:
        for channel, address, name in (("sms", SUB_PHONE, "Ann"), ("telegram", SUB_CHAT, "Bo")):
            person = await enrolled_participant(session, channel=channel, address=address,
                                                name=name, now=NOW)
            assert person.id is not None
            await subscribe(session, participant_id=person.id, meeting_id=meeting_id, now=NOW)
            ids.append(person.id)
    return ids


async def flag_stale(engine: AsyncEngine, meeting_id: int, people: list[int]) -> None:
    """Write "it didn't run" answers from each person, yesterday."""
    async with session_scope(engine) as session:
        for pid in people:
            session.add(AttendanceRecord(
                participant_id=pid, meeting_id=meeting_id, outcome=AttendanceOutcome.NOT_RUNNING,
                occurrence_start=datetime(2026, 11, 24, 18, tzinfo=UTC),
                reported_at=NOW - timedelta(days=1)))


async def staff_row(engine: AsyncEngine, staff_id: int) -> StaffUser:
    async with session_scope(engine) as session:
        row = await session.get(StaffUser, staff_id)
        assert row is not None
        return row


async def meeting_status(engine: AsyncEngine, meeting_id: int) -> MeetingStatus:
    async with session_scope(engine) as session:
        meeting = await session.get(Meeting, meeting_id)
        assert meeting is not None
        return MeetingStatus(meeting.status)


async def rows_to(engine: AsyncEngine, *addresses: str) -> list[OutboundMessage]:
    async with session_scope(engine) as session:
        found = await session.exec(select(OutboundMessage)
                                   .where(col(OutboundMessage.address).in_(addresses))
                                   .order_by(col(OutboundMessage.id)))
        return list(found.all())


class Chat:
    """One person's private chat with the bot, driven through the webhook."""

    def __init__(self, stack: Stack, user: FakeTelegramUser) -> None:
        self.stack, self.user = stack, user

    async def _post(self, update: dict[str, Any]) -> list[str]:
        before = len(self.stack.telegram.seen(self.user.chat_id))
        response = await self.stack.telegram_update(update)
        assert response.status_code == 200, response.text
        return self.stack.telegram.seen(self.user.chat_id)[before:]

    async def say(self, text: str) -> list[str]:
        """Type a message; return what the person sees next."""
        return await self._post(self.user.text(text))

    async def press(self, label: str) -> list[str]:
        """Press the newest button with this label."""
        return await self._post(self.user.press(label))

    async def forge(self, data: str) -> list[str]:
        """Send a button press with made-up callback data (as a modified client could)."""
        message = max((m for (c, _), m in self.stack.telegram.messages.items()
                       if c == self.user.chat_id), key=lambda m: m["message_id"])
        return await self._post({"update_id": 600_000_000 + len(self.stack.telegram.calls),
                                 "callback_query": {
                                     "id": "9", "from": self.user._user(), "message": message,
                                     "chat_instance": "-1", "data": data}})


async def coordinator(stack: Stack, *, region: str = "Stoke", role: str = "coordinator",
                      link: bool = True) -> tuple[int, Chat]:
    """Add a coordinator and (by default) link their Telegram chat with a console code."""
    staff, _password = await make_staff(stack.engine, role=role, region=region,
                                        email=f"{role}.{region.lower()}@example.org")
    assert staff.id is not None
    chat = Chat(stack, FakeTelegramUser(stack.telegram, COORDINATOR_CHAT, "Cora"))
    if link:
        code = await new_code(stack, staff.id)
        seen = await chat.say(f"/staff {code}")
        assert seen[0] == t("staff_bot.linked", name=staff.display_name)
    return staff.id, chat


async def new_code(stack: Stack, staff_id: int) -> str:
    async with session_scope(stack.engine) as session:
        staff = await session.get(StaffUser, staff_id)
        assert staff is not None
        code, _ = await issue_staff_link_code(
            session, staff=staff, key=stack.settings.secret_key.get_secret_value(),
            now=stack.clock.now)
    return code


# Linking ----------------------------------------------------------------------------------

async def test_coordinator_links_with_the_code_the_console_shows(stack: Stack) -> None:
    staff, password = await make_staff(stack.engine, role="coordinator", region="Stoke")
    assert (await sign_in(stack.client, staff.email, password)).status_code == 303
    page = await stack.client.get("/staff/telegram")
    assert read_page(page.text).h1 == "Link your Telegram"
    code = page.text.split('class="panel__code">', 1)[1].split("<", 1)[0].strip()
    chat = Chat(stack, FakeTelegramUser(stack.telegram, COORDINATOR_CHAT, "Cora"))
    seen = await chat.say(f"/start staff-{code.replace('-', '')}")  # the page's deep link
    assert seen == [t("staff_bot.linked", name=staff.display_name), t("staff_bot.help")]
    row = await staff_row(stack.engine, staff.id or 0)
    assert row.telegram_id == str(COORDINATOR_CHAT) and row.telegram_link_hash is None
    # The code worked once: sent again, it is an ordinary staff message now.
    assert await chat.say(f"/staff {code}") == [t("staff_bot.already_linked")]
    # Nothing the coordinator typed was kept, and the staff replies went through the outbox.
    replies = await rows_to(stack.engine, str(COORDINATOR_CHAT))
    assert all(r.kind == MessageKind.REPLY and r.priority == 10 for r in replies)
    assert all(code not in r.body for r in replies)


async def test_wrong_and_expired_codes_get_one_short_reply(stack: Stack, enrolled: Enrolled
                                                           ) -> None:
    staff_id, chat = await coordinator(stack, link=False)
    code = await new_code(stack, staff_id)
    assert await chat.say("/staff ABCDE-FGHJK") == [t("staff_bot.link_wrong")]
    assert await chat.say("/staff not a code at all") == [t("staff_bot.link_wrong")]
    stack.clock.advance(minutes=16)
    assert await chat.say(f"/staff {code}") == [t("staff_bot.link_wrong")]  # expired
    assert (await staff_row(stack.engine, staff_id)).telegram_id is None
    # Attempts are counted: after five wrong codes in an hour even a good one is refused.
    for _ in range(2):
        await chat.say("/staff 22222-22222")
    fresh = await new_code(stack, staff_id)
    assert await chat.say(f"/staff {fresh}") == [t("staff_bot.link_too_many")]
    assert (await staff_row(stack.engine, staff_id)).telegram_id is None
    async with session_scope(stack.engine) as session:
        failed = (await session.exec(select(AuditEvent).where(
            AuditEvent.action == "staff_telegram_link_failed"))).all()
    assert len(failed) == 5
    # A wrong code from a participant's chat is refused the same way, and links nothing.
    await Chat(stack, stack.user).say(f"/start {enrolled.code}")
    assert await Chat(stack, stack.user).say(f"/staff {fresh}") == \
        [t("staff_bot.link_participant")]


async def test_a_champion_code_and_a_demoted_coordinator_are_refused(stack: Stack) -> None:
    staff_id, chat = await coordinator(stack)
    async with session_scope(stack.engine) as session:
        row = await session.get(StaffUser, staff_id)
        assert row is not None
        row.role = StaffRole.CHAMPION
        session.add(row)
    assert await chat.say("/meetings") == [t("staff_bot.not_allowed")]
    assert await chat.say("/broadcast") == [t("staff_bot.not_allowed")]


# /meetings -------------------------------------------------------------------------------

async def test_meetings_lists_stale_ones_and_suspend_tells_subscribers(stack: Stack) -> None:
    stoke = await add_meeting(stack.engine, "Hanley SMART", "Stoke")
    quiet = await add_meeting(stack.engine, "Stone SMART", "Stoke")
    leeds = await add_meeting(stack.engine, "Leeds SMART", "Leeds")
    people = await add_subscribers(stack.engine, stoke)
    await flag_stale(stack.engine, stoke, people)
    await flag_stale(stack.engine, leeds, people)
    await flag_stale(stack.engine, quiet, people[:1])  # one person: not flagged
    _staff_id, chat = await coordinator(stack)

    seen = await chat.say("/meetings")
    assert len(seen) == 1  # Leeds is not this coordinator's; Stone has one report only
    assert seen[0].startswith("Hanley SMART: 2 people said it did not run (2 reports)")
    assert seen[0].endswith("[Confirm running]\n[Suspend]")

    assert await chat.press("Suspend") == ["Suspended. 2 people were told."]
    assert await meeting_status(stack.engine, stoke) == MeetingStatus.SUSPENDED
    told = [r for r in await rows_to(stack.engine, SUB_PHONE, SUB_CHAT)
            if r.meeting_id == stoke and r.kind != MessageKind.REPLY]
    assert sorted(r.address for r in told) == sorted([SUB_PHONE, SUB_CHAT])
    assert await chat.say("/meetings") == [t("staff_bot.no_stale")]
    async with session_scope(stack.engine) as session:
        audit = (await session.exec(select(AuditEvent).where(
            AuditEvent.action == "meeting_suspended"))).one()
    assert audit.detail == {"meeting_id": stoke, "via": "telegram"}


async def test_confirm_running_clears_the_flag(stack: Stack) -> None:
    stoke = await add_meeting(stack.engine, "Hanley SMART", "Stoke")
    people = await add_subscribers(stack.engine, stoke)
    await flag_stale(stack.engine, stoke, people)
    _staff_id, chat = await coordinator(stack)
    await chat.say("/meetings")
    assert await chat.press("Confirm running") == [
        t("staff_bot.confirmed", meeting="Hanley SMART")]
    assert await meeting_status(stack.engine, stoke) == MeetingStatus.ACTIVE
    assert await chat.say("/meetings") == [t("staff_bot.no_stale")]


async def test_forged_buttons_cannot_touch_another_regions_meeting(stack: Stack) -> None:
    leeds = await add_meeting(stack.engine, "Leeds SMART", "Leeds")
    people = await add_subscribers(stack.engine, leeds)
    await flag_stale(stack.engine, leeds, people)
    _staff_id, chat = await coordinator(stack)
    before = await rows_to(stack.engine, SUB_PHONE, SUB_CHAT)
    for data in (f"staff:sus:{leeds}", f"staff:ok:{leeds}", f"staff:bc:{leeds}",
                 "staff:sus:99999", "staff:sus:x", "staff:send:1"):
        seen = await chat.forge(data)
        assert seen in ([t("staff_bot.no_meeting")], [t("staff_bot.too_old")]), (data, seen)
    assert await meeting_status(stack.engine, leeds) == MeetingStatus.ACTIVE
    assert await rows_to(stack.engine, SUB_PHONE, SUB_CHAT) == before


# Participants ------------------------------------------------------------------------------

async def test_a_participant_sending_staff_commands_gets_the_participant_replies(
    stack: Stack, enrolled: Enrolled
) -> None:
    stoke = await add_meeting(stack.engine, "Hanley SMART", "Stoke")
    await flag_stale(stack.engine, stoke, await add_subscribers(stack.engine, stoke))
    await coordinator(stack)  # a linked coordinator exists; Sam is not them
    sam = Chat(stack, stack.user)
    await sam.say(f"/start {enrolled.code}")
    await sam.press(t("consent.yes_label"))
    staff_texts = {v for k, v in _all_staff_texts().items()}
    for command, engine_word in (("/meetings", "MEETINGS"), ("/broadcast", "BROADCAST")):
        seen = await sam.say(command)
        assert seen and not any(s.split("\n")[0] in staff_texts for s in seen)
        assert seen == await sam.say(engine_word)  # what the engine says to the word
    assert await meeting_status(stack.engine, stoke) == MeetingStatus.ACTIVE


def _all_staff_texts() -> dict[str, str]:
    from handlers.texts import all_texts

    return {k: v for k, v in all_texts().items() if k.startswith("staff_bot.")}


# /broadcast -------------------------------------------------------------------------------

async def test_broadcast_preview_then_send_queues_one_message_per_subscriber(
    stack: Stack
) -> None:
    stoke = await add_meeting(stack.engine, "Hanley SMART", "Stoke")
    await add_meeting(stack.engine, "Leeds SMART", "Leeds")
    await add_subscribers(stack.engine, stoke)
    staff_id, chat = await coordinator(stack)

    seen = await chat.say("/broadcast")
    assert seen == [t("staff_bot.choose_meeting") + "\n[Hanley SMART]"]  # not Leeds
    assert await chat.press("Hanley SMART") == [
        t("staff_bot.ask_text", meeting="Hanley SMART")]
    news = "The room has moved to the back hall this week.\nSame time."
    preview = await chat.say(news)
    assert preview == [
        t("staff_bot.preview", meeting="Hanley SMART", text=news, n=2,
          channels="1 by text message, 1 on Telegram")
        + "\n" + t("staff_bot.preview_segments", n=1) + "\n[Send]\n[Cancel]"]
    assert [r for r in await rows_to(stack.engine, SUB_PHONE, SUB_CHAT)
            if r.kind == MessageKind.BROADCAST] == []  # nothing before Send

    assert await chat.press("Send") == [t("staff_bot.sent", n=2)]
    sent = [r for r in await rows_to(stack.engine, SUB_PHONE, SUB_CHAT)
            if r.kind == MessageKind.BROADCAST]
    assert sorted(r.address for r in sent) == sorted([SUB_PHONE, SUB_CHAT])
    assert {r.body for r in sent} == {news}
    # A second press of the same Send (a stale client) sends nothing more.
    data = next(r for r in await rows_to(stack.engine, str(COORDINATOR_CHAT))
                if (r.meta or {}).get("staff", {}).get("at") == "broadcast_preview").choices
    assert data is not None
    assert await chat.forge(data[0][1]) == [t("staff_bot.already_done")]
    assert len([r for r in await rows_to(stack.engine, SUB_PHONE, SUB_CHAT)
                if r.kind == MessageKind.BROADCAST]) == 2
    async with session_scope(stack.engine) as session:
        audit = (await session.exec(select(AuditEvent).where(
            AuditEvent.action == "broadcast_sent"))).one()
    assert audit.actor == f"staff:{staff_id}"


async def test_broadcast_cancel_and_bad_text_keep_nothing(stack: Stack) -> None:
    stoke = await add_meeting(stack.engine, "Hanley SMART", "Stoke")
    await add_subscribers(stack.engine, stoke)
    _staff_id, chat = await coordinator(stack)
    await chat.say("/broadcast hanley")
    await chat.press("Hanley SMART")
    assert await chat.say("x" * 700) == [t("staff_bot.too_long", n=640)]
    await chat.say("Back next week.")  # still waiting for the text after a bad one
    assert await chat.press("Cancel") == [t("staff_bot.not_sent")]
    assert await chat.say("Back next week.") == [t("staff_bot.help")]  # no longer waiting
    assert [r for r in await rows_to(stack.engine, SUB_PHONE, SUB_CHAT)
            if r.kind == MessageKind.BROADCAST] == []
    assert await chat.say("/broadcast nothing-like-it") == [t("staff_bot.none_match")]


async def test_unlinking_makes_the_chat_ordinary_again(stack: Stack) -> None:
    staff_id, chat = await coordinator(stack)
    async with session_scope(stack.engine) as session:
        row = await session.get(StaffUser, staff_id)
        assert row is not None
        row.telegram_id = None
        session.add(row)
    seen = await chat.say("/meetings")
    assert seen and seen[0] not in _all_staff_texts().values()




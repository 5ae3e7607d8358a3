"""A coordinator's changes to a meeting: each tells the people it affects once, atomically."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.render import sms_segments
from meeting_finder.recurrence import next_occurrence
from scheduler import meeting_changes as mc
from scheduler.planning import plan
from storage.db import session_scope
from storage.models import Meeting, MeetingStatus, MessageKind, OutboundMessage, OutboxStatus
from storage.subscriptions import subscribe
from tests.scheduler.conftest import add_person, rows

NOW = datetime(2025, 6, 2, 12, tzinfo=UTC)  # Monday 1pm BST; meetings on Tuesdays 6pm
TUESDAY = date(2025, 6, 3)
BY = "staff:1"


async def _meeting(engine: AsyncEngine, **values: object) -> int:
    fields: dict[str, object] = {
        "timezone": "Europe/London", "slug": "hanley-tue", "name": "Hanley SMART",
        "weekday": 1, "start_time": time(18), "end_time": time(19, 30),
        "venue": "Hope Centre", "address": "1 Town Road, Hanley", "postcode": "ST1 3AA",
        "lat": 53.0245, "lon": -2.1750,
        **values}
    async with session_scope(engine) as session:
        m = Meeting(**fields)  # type: ignore[arg-type]
        session.add(m)
        await session.flush()
        return m.id or 0


async def _subscribe(engine: AsyncEngine, pid: int, mid: int) -> None:
    async with session_scope(engine) as session:
        await subscribe(session, participant_id=pid, meeting_id=mid, now=NOW - timedelta(days=1))


async def _two_subscribers(engine: AsyncEngine) -> tuple[int, list[int]]:
    mid = await _meeting(engine)
    people = [await add_person(engine, name=n, phone=f"+44770090000{i}", discreet=False)
              for i, n in enumerate(("Sam", "Alex"), start=1)]
    for pid in people:
        await _subscribe(engine, pid, mid)
    return mid, people


def _reminders(outbox: list[OutboundMessage], status: OutboxStatus) -> list[OutboundMessage]:
    return [r for r in outbox if r.kind == MessageKind.REMINDER and r.status == status
            and r.dedupe_key.startswith("rem:")]


def _notices(outbox: list[OutboundMessage]) -> list[OutboundMessage]:
    return [r for r in outbox if (r.meta or {}).get("change")]


async def test_cancelling_one_date_tells_each_person_once_and_cancels_those_reminders(
    engine: AsyncEngine,
) -> None:
    mid, people = await _two_subscribers(engine)
    await plan(engine, now=NOW)
    before = _reminders(await rows(engine), OutboxStatus.QUEUED)
    assert len(before) == 4  # two people, day before and an hour before
    result = await mc.cancel_date(engine, meeting_id=mid, day=TUESDAY, by=BY, now=NOW)
    again = await mc.cancel_date(engine, meeting_id=mid, day=TUESDAY, by=BY, now=NOW)
    await plan(engine, now=NOW + timedelta(minutes=5))  # the worker's pass adds nothing
    outbox = await rows(engine)
    notices = _notices(outbox)
    assert result.told == 2 and result.reminders_cancelled == 4 and again.told == 0
    assert sorted(n.participant_id or 0 for n in notices) == sorted(people)
    assert notices[0].body == ("Sorry, Hanley SMART on Tue 3 Jun 6pm is not running. "
                               "Send MEETINGS to find another.")
    cancelled = {r.id for r in outbox if r.status == OutboxStatus.CANCELLED}
    assert {r.id for r in before} <= cancelled
    queued = _reminders(outbox, OutboxStatus.QUEUED)
    assert all("20250603" not in r.dedupe_key for r in queued)
    async with session_scope(engine) as session:
        m = await session.get(Meeting, mid)
        assert m is not None and m.cancelled_dates == ["2025-06-03"]
        start = next_occurrence(m, NOW)
        assert start is not None and start.date() == date(2025, 6, 10)  # the week after


async def test_restoring_a_date_plans_its_reminders_again_and_tells_nobody(
    engine: AsyncEngine,
) -> None:
    mid, _ = await _two_subscribers(engine)
    await plan(engine, now=NOW)
    await mc.cancel_date(engine, meeting_id=mid, day=TUESDAY, by=BY, now=NOW)
    result = await mc.restore_date(engine, meeting_id=mid, day=TUESDAY, by=BY, now=NOW)
    outbox = await rows(engine)
    assert result.told == 0
    assert len([r for r in _reminders(outbox, OutboxStatus.QUEUED)
                if "20250603" in r.dedupe_key]) == 4
    with pytest.raises(mc.MeetingChangeError):
        await mc.restore_date(engine, meeting_id=mid, day=TUESDAY, by=BY, now=NOW)


@pytest.mark.parametrize(("day", "message"), [
    (date(2025, 6, 4), "is a Wednesday; this meeting is on Tuesdays"),
    (date(2025, 5, 27), "already started or passed"),
    (date(2027, 6, 1), "within the next year"),
])
async def test_a_date_that_is_not_one_of_its_dates_is_refused(
    engine: AsyncEngine, day: date, message: str,
) -> None:
    mid = await _meeting(engine)
    with pytest.raises(mc.MeetingChangeError, match=message):
        await mc.cancel_date(engine, meeting_id=mid, day=day, by=BY, now=NOW)


async def test_suspending_tells_every_subscriber_once_with_the_nearest_alternative(
    engine: AsyncEngine,
) -> None:
    mid, people = await _two_subscribers(engine)
    await _meeting(engine, slug="stoke-wed", name="Stoke Wednesday", weekday=2,
                   venue="Library", address="Stoke Road, Stoke", postcode="ST4 1AA",
                   lat=53.0050, lon=-2.1800)
    await plan(engine, now=NOW)
    result = await mc.suspend(engine, meeting_id=mid, by=BY, now=NOW)
    again = await mc.suspend(engine, meeting_id=mid, by=BY, now=NOW)
    await plan(engine, now=NOW + timedelta(minutes=5))
    outbox = await rows(engine)
    notices = _notices(outbox)
    assert result.told == 2 and again.told == 0 and len(notices) == 2
    body = notices[0].body
    assert body.startswith("Sorry, Hanley SMART is paused for now. Nearest other: "
                           "Stoke Wednesday, Wed 4 Jun 6pm")
    assert body.endswith("Send MEETINGS to find others.")
    assert sms_segments(body) <= 2
    assert _reminders(outbox, OutboxStatus.QUEUED) == []
    resumed = await mc.resume(engine, meeting_id=mid, by=BY, now=NOW + timedelta(hours=1))
    outbox = await rows(engine)
    assert resumed.told == 2 and len(_reminders(outbox, OutboxStatus.QUEUED)) == 4
    assert any(n.body.startswith("Good news: Hanley SMART is running again. Next one: "
                                 "Tue 3 Jun 6pm") for n in _notices(outbox))


async def test_suspend_then_cancel_for_good_in_the_same_minute_tells_both(
    engine: AsyncEngine,
) -> None:
    mid, _ = await _two_subscribers(engine)
    paused = await mc.suspend(engine, meeting_id=mid, by=BY, now=NOW)
    stopped = await mc.cancel_for_good(engine, meeting_id=mid, by=BY, now=NOW)
    assert (paused.told, stopped.told) == (2, 2)


async def test_cancel_for_good_with_no_alternative_still_says_how_to_find_one(
    engine: AsyncEngine,
) -> None:
    mid, _ = await _two_subscribers(engine)
    result = await mc.cancel_for_good(engine, meeting_id=mid, by=BY, now=NOW)
    notices = _notices(await rows(engine))
    assert result.told == 2
    assert notices[0].body == ("Sorry, Hanley SMART has stopped running. "
                               "Send MEETINGS to find others.")
    async with session_scope(engine) as session:
        m = await session.get(Meeting, mid)
        assert m is not None and m.status == MeetingStatus.CANCELLED
        assert m.status_changed_at == NOW


async def test_moving_a_meeting_tells_each_person_once_in_their_own_clock(
    engine: AsyncEngine,
) -> None:
    mid, people = await _two_subscribers(engine)
    await plan(engine, now=NOW)
    result = await mc.update_meeting(
        engine, meeting_id=mid, by=BY, now=NOW,
        values={"weekday": 3, "start_time": time(19), "venue": "Library, Bethesda Street"})
    await plan(engine, now=NOW + timedelta(minutes=5))
    outbox = await rows(engine)
    notices = _notices(outbox)
    assert result.told == 2 and len(notices) == 2
    assert notices[0].body.startswith("Hanley SMART has changed. From now on it is Thu 5 Jun "
                                      "7pm, Library")
    queued = _reminders(outbox, OutboxStatus.QUEUED)
    assert len(queued) == 4 and all("20250605T1800Z" in r.dedupe_key for r in queued)


async def test_an_edit_that_does_not_move_it_tells_nobody(engine: AsyncEngine) -> None:
    mid, _ = await _two_subscribers(engine)
    await plan(engine, now=NOW)
    result = await mc.update_meeting(engine, meeting_id=mid, by=BY, now=NOW,
                                     values={"notes": "Ring the bell"})
    assert result.told == 0 and _notices(await rows(engine)) == []


async def test_a_worker_pass_racing_a_change_never_doubles_the_text(
    engine: AsyncEngine,
) -> None:
    mid, _ = await _two_subscribers(engine)
    await plan(engine, now=NOW)
    later = NOW + timedelta(minutes=1)
    await asyncio.gather(
        mc.cancel_date(engine, meeting_id=mid, day=TUESDAY, by=BY, now=later),
        plan(engine, now=later), plan(engine, now=later))
    await plan(engine, now=later + timedelta(minutes=1))
    notices = _notices(await rows(engine))
    assert len(notices) == 2 and len({n.participant_id for n in notices}) == 2


@pytest.mark.parametrize("values", [
    {"slug": "x"}, {"status": "active"}, {"nonsense": 1}, {"name": "  "}, {"weekday": 7},
    {"timezone": "Mars/Olympus"},
])
async def test_bad_values_are_refused(engine: AsyncEngine, values: dict[str, object]) -> None:
    mid = await _meeting(engine)
    with pytest.raises(mc.MeetingChangeError):
        await mc.update_meeting(engine, meeting_id=mid, values=values, by=BY, now=NOW)


async def test_create_gives_a_unique_console_slug(engine: AsyncEngine) -> None:
    values = {"name": "Hanley SMART 🌟", "weekday": 1, "start_time": time(18),
              "timezone": "Europe/London"}
    a = await mc.create_meeting(engine, values=dict(values), by=BY, now=NOW)
    b = await mc.create_meeting(engine, values=dict(values), by=BY, now=NOW)
    assert a.slug == "console-hanley-smart" and b.slug == "console-hanley-smart-2"
    assert a.source == "console" and a.id is not None
    with pytest.raises(mc.MeetingChangeError):
        await mc.cancel_date(engine, meeting_id=999, day=TUESDAY, by=BY, now=NOW)

"""Changes a coordinator makes to a meeting, each told to the people it affects once.

Every change is one transaction: the meeting row changes, the queued reminders it spoils are
cancelled, and one text per reachable subscriber is written to the outbox (dedupe keys make
a second click, or the worker's planning pass seeing the same change, say nothing more).
Then the meeting's reminders are planned again at once. The result says how many people
were told, for the page to show.

- cancel_date: one local date off ("not this Tuesday"); subscribers told once.
- restore_date: that date back on; nobody told (their reminders come back).
- suspend / cancel_for_good: subscribers told once, with the nearest open alternative.
- resume: back to running; subscribers told it is on again.
- update_meeting: any edit; a move (day, time or place) tells subscribers the new when/where.
- create_meeting: a hand-made meeting (source "console").
- confirm_running: a coordinator checked it runs; earlier "it didn't run" reports answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import Meeting


class MeetingChangeError(ValueError):
    """The change cannot be made (unknown meeting, a date not on its day or in the past)."""


@dataclass(frozen=True)
class ChangeResult:
    """What a change did: people told (one text each) and reminders cancelled."""

    meeting_id: int
    told: int = 0
    reminders_cancelled: int = 0


async def cancel_date(engine: AsyncEngine, *, meeting_id: int, day: date, by: str,
                      now: datetime) -> ChangeResult:
    """Cancel one local date of a weekly meeting; tell its subscribers once."""
    raise NotImplementedError


async def restore_date(engine: AsyncEngine, *, meeting_id: int, day: date, by: str,
                       now: datetime) -> ChangeResult:
    """Put a cancelled date back; reminders for it are planned again."""
    raise NotImplementedError


async def suspend(engine: AsyncEngine, *, meeting_id: int, by: str, now: datetime
                  ) -> ChangeResult:
    """Pause a meeting; tell each subscriber once, with the nearest open alternative."""
    raise NotImplementedError


async def cancel_for_good(engine: AsyncEngine, *, meeting_id: int, by: str, now: datetime
                          ) -> ChangeResult:
    """Stop a meeting for good; tell each subscriber once, with the nearest alternative."""
    raise NotImplementedError


async def resume(engine: AsyncEngine, *, meeting_id: int, by: str, now: datetime
                 ) -> ChangeResult:
    """Set a suspended or cancelled meeting running again; tell its subscribers."""
    raise NotImplementedError


async def update_meeting(engine: AsyncEngine, *, meeting_id: int, values: dict[str, Any],
                         by: str, now: datetime) -> ChangeResult:
    """Change a meeting's fields (Meeting attribute names); a move tells subscribers once."""
    raise NotImplementedError


async def create_meeting(engine: AsyncEngine, *, values: dict[str, Any], by: str,
                         now: datetime) -> Meeting:
    """Add a hand-made meeting (Meeting attribute names); return it with its id and slug."""
    raise NotImplementedError


async def confirm_running(engine: AsyncEngine, *, meeting_id: int, by: str, now: datetime
                          ) -> None:
    """Record that a coordinator checked the meeting runs (stale flags clear)."""
    raise NotImplementedError

"""CHECKIN: mood and craving 0-10 and one optional line; days since release and a trend.

Scheduled check-in prompts from the release sequence ask people to reply CHECKIN, which
lands here; `start_checkin` is the entry point for anything else that wants to start one.
"""

from __future__ import annotations

from datetime import timedelta

from handlers.conversation import Conversation
from handlers.registry import flow, keyword, menu_item
from handlers.texts import t
from handlers.tools.common import (
    BACK_WORDS,
    NOTE_MAX,
    SKIP_WORDS,
    ask_rating,
    is_back,
    is_skip,
    parse_rating,
    telegram_only,
)
from handlers.types import Choice, Reply
from storage.tools_q import add_checkin, checkins_between, last_checkin_before

WEEK = timedelta(days=7)
SAME = 0.5  # averages closer than this are "about the same"
STRONG_CRAVING = 7  # at or above this, URGE is offered

menu_item(30, "menu.checkin", "CHECKIN")


async def start_checkin(conv: Conversation) -> list[Reply]:
    """Start a check-in: ask for mood first."""
    conv.goto("checkin", "mood", {})
    return [ask_rating(conv, "checkin.ask_mood")]


@keyword("CHECKIN", "CHECK-IN")
async def checkin_keyword(conv: Conversation, args: str) -> list[Reply]:
    """Start a check-in when the person sends CHECKIN."""
    return await start_checkin(conv)


@flow("checkin", free_text=frozenset({"note"}), words=SKIP_WORDS | BACK_WORDS)
async def checkin_step(conv: Conversation, text: str) -> list[Reply]:
    """Take the mood, the craving, then the optional line."""
    step = conv.state.step
    if is_back(text):
        back = {"craving": "mood", "note": "craving"}.get(step, "mood")
        conv.goto("checkin", back)
        return [ask_rating(conv, f"checkin.ask_{back}")]
    if step == "note":
        note = None if is_skip(text) else text[:NOTE_MAX]
        return await _save(conv, note)
    if is_skip(text):
        rating = None
    else:
        rating = parse_rating(text)
        if rating is None:
            return [ask_rating(conv, "tools.rating_hint")]
    if step == "craving":
        conv.update(craving=rating)
        conv.goto("checkin", "note")
        return [Reply(t("checkin.ask_note"),
                      choices=telegram_only(conv, Choice(t("tools.skip_label"), "SKIP")))]
    conv.update(mood=rating)
    conv.goto("checkin", "craving")
    return [ask_rating(conv, "checkin.ask_craving")]


async def _save(conv: Conversation, note: str | None) -> list[Reply]:
    pid = conv.participant.id or 0
    mood, craving = conv.data.get("mood"), conv.data.get("craving")
    await add_checkin(conv.session, participant_id=pid, mood=mood, craving=craving, note=note,
                      now=conv.now)
    conv.reset()
    lines = [t("checkin.thanks")]
    days = (conv.now.astimezone(conv.ctx.timezone).date() - conv.participant.release_date).days
    if days >= 0:
        lines.append(t("checkin.days", days=days))
    lines.append(await _trend(conv, pid, craving))
    if craving is not None and craving >= STRONG_CRAVING:
        lines.append(t("checkin.offer_urge"))
    return [Reply(" ".join(lines))]


def _mean(values: list[int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


async def _trend(conv: Conversation, pid: int, craving: int | None) -> str:
    """Compare cravings this week with last week, or with the last check-in."""
    now = conv.now
    end = now + timedelta(seconds=1)  # include the check-in just saved
    this_week = _mean([c.craving for c in await checkins_between(
        conv.session, pid, start=now - WEEK, end=end)])
    last_week = _mean([c.craving for c in await checkins_between(
        conv.session, pid, start=now - 2 * WEEK, end=now - WEEK)])
    if this_week is not None and last_week is not None:
        return t(f"checkin.trend_week_{_direction(this_week, last_week)}")
    previous = await last_checkin_before(conv.session, pid, before=now)
    if previous is not None and previous.craving is not None and craving is not None:
        return t(f"checkin.trend_last_{_direction(craving, previous.craving)}")
    if previous is None:
        return t("checkin.first")
    return t("checkin.keep_going")


def _direction(now_value: float, before: float) -> str:
    if abs(now_value - before) < SAME:
        return "same"
    return "lower" if now_value < before else "higher"

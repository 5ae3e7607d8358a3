"""The safety layer: crisis words, STOP, START and HELP, before any flow sees a message."""

from __future__ import annotations

from handlers.conversation import Conversation
from handlers.crisis import detect_crisis
from handlers.texts import t
from handlers.types import Reply
from storage.models import (
    CrisisEvent,
    Participant,
    ParticipantStatus,
)
from storage.participants import audit, opt_out


def crisis_replies(category: str) -> list[Reply]:
    """Return the crisis numbers for a category."""
    key = "crisis.overdose" if category == "overdose" else "crisis.reply"
    return [Reply(t(key), urgent=True)]


async def record_crisis(conv: Conversation, category: str) -> None:
    """Note that crisis numbers were sent, for staff review, only where consented."""
    if not conv.participant.staff_review_consent:
        return  # no record of any kind: the numbers were sent, and that is all
    conv.session.add(CrisisEvent(participant_id=conv.participant.id, at=conv.now,
                                 channel=conv.channel, category=category))
    await audit(conv.session, actor="system", action="crisis_reply", now=conv.now,
                participant_id=conv.participant.id, detail={"category": category})


async def stop(conv: Conversation) -> list[Reply]:
    """Stop every message on every channel, and say so once."""
    p: Participant = conv.participant
    if p.status == ParticipantStatus.STOPPED:
        return [Reply(t("stop.already"))]
    await opt_out(conv.session, participant_id=p.id or 0, now=conv.now,
                  reason="participant sent STOP")
    conv.reset()
    await audit(conv.session, actor=f"participant:{p.id}", action="stop", now=conv.now,
                participant_id=p.id, detail={"channel": conv.channel})
    return [Reply(t("stop.done"))]


async def start(conv: Conversation) -> list[Reply]:
    """Turn messages back on after STOP."""
    p = conv.participant
    p.status = ParticipantStatus.ACTIVE if p.consent_at else ParticipantStatus.ENROLLED
    p.opted_out_at = None
    p.updated_at = conv.now
    conv.session.add(p)
    await audit(conv.session, actor=f"participant:{p.id}", action="start", now=conv.now,
                participant_id=p.id, detail={"channel": conv.channel})
    if p.consent_at is None:
        return [Reply(t("consent.ask"), choices=())]
    return [Reply(t("stop.restarted", name=conv.echo(p.display_name)))]


def check_crisis(text: str) -> str | None:
    """Return the crisis category of a message, if any."""
    return detect_crisis(text)

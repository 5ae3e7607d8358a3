"""LINK: a fresh one-day code so a person can add their other channel (SMS or Telegram)."""

from __future__ import annotations

from datetime import timedelta

from handlers.channels import traits
from handlers.conversation import Conversation
from handlers.registry import keyword
from handlers.texts import t
from handlers.types import Reply
from storage.participants import issue_link_code

LINK_CODE_HOURS = 24


@keyword("LINK")
async def new_link_code(conv: Conversation, args: str) -> list[Reply]:
    """Give a code to send on the other channel; it works once, for a day."""
    p = conv.participant
    code = await issue_link_code(conv.session, participant_id=p.id or 0,
                                 release_date=p.release_date, now=conv.now,
                                 expires_at=conv.now + timedelta(hours=LINK_CODE_HOURS))
    other = traits(conv.channel).other_channel
    return [Reply(t("link.code", code=code, other=other))]

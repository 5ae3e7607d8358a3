"""WHATSAPP WAIT or WHATSAPP SMS: what happens to a WhatsApp message that cannot go yet.

Outside WhatsApp's 24-hour window a message we start goes as an approved template if there
is one; if not, it waits until the person next writes ("wait", the default) or goes by SMS
to the same number ("sms").
"""

from __future__ import annotations

from handlers.conversation import Conversation
from handlers.registry import keyword
from handlers.texts import t
from handlers.tools.common import bare
from handlers.types import Reply
from storage.participants import audit

CHOICES = {"WAIT": "wait", "SMS": "sms", "TEXT": "sms"}


@keyword("WHATSAPP")
async def choose_whatsapp_fallback(conv: Conversation, args: str) -> list[Reply]:
    """Set or show the choice; anything else gets the usage and changes nothing."""
    p = conv.participant
    choice = CHOICES.get(bare(args))
    if choice is None:
        return [Reply(t(f"whatsapp.now_{p.whatsapp_fallback}")), Reply(t("whatsapp.usage"))]
    if choice != p.whatsapp_fallback:
        p.whatsapp_fallback = choice
        p.updated_at = conv.now
        conv.session.add(p)
        await audit(conv.session, actor=f"participant:{p.id}", action="whatsapp_fallback",
                    participant_id=p.id, now=conv.now, detail={"choice": choice})
    return [Reply(t(f"whatsapp.set_{choice}"))]

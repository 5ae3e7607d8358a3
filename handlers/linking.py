"""First contact: link codes, enrolled numbers, and consent."""

from __future__ import annotations

import logging
import re
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.channels import traits
from handlers.conversation import Conversation
from handlers.menu import menu_reply
from handlers.proving import looks_like_proof, proves_identity
from handlers.textin import plain_letters
from handlers.texts import reading_as, t
from handlers.types import Choice, EngineContext, Inbound, Reply
from storage.errors import LinkCodeError
from storage.limits_q import sender_lock, serialise
from storage.models import ChannelIdentity, Participant, ParticipantStatus
from storage.participants import (
    MAX_FAILED_LINKS_ALL_PER_HOUR,
    MAX_FAILED_LINKS_PER_HOUR,
    audit,
    enrolled_by_phone,
    failed_link_attempts,
    find_identity,
    hash_address,
    identities_of,
    is_known_code,
    link_identity,
    normalise_code,
    redeem_link_code,
)

logger = logging.getLogger(__name__)
YES_WORDS = frozenset({"YES", "Y", "1", "OK", "OKAY", "YEP", "YEAH", "AGREE", "CONSENT_YES"})
NO_WORDS = frozenset({"NO", "N", "2", "NOPE", "CONSENT_NO"})
# "new code", "code expired", "lost my code", "I need a code", "no code": asking how to get one.
_CODE_WORD = re.compile(r"\bcodes?\b", re.IGNORECASE)
_NEED_WORDS = re.compile(
    r"\b(new|another|lost|lose|forgot|forgotten|expired|run ?out|ran out|old|need|get|no|not"
    r"|don'?t|haven'?t|missing|wrong|work|working|where|how)\b",
    re.IGNORECASE,
)
# A code written as on the card inside a sentence: "my code is 7KQ2M-XH4PA".
_CARD_CODE = re.compile(r"\b[A-Za-z0-9]{5}-[A-Za-z0-9]{5}\b")


def consent_question() -> Reply:
    """Ask for consent, with buttons on Telegram and YES on SMS."""
    return Reply(
        t("consent.ask"),
        choices=(Choice(t("consent.yes_label"), "YES"), Choice(t("consent.no_label"), "NO")),
    )


def code_in(text: str) -> str | None:
    """Find a link code in a message: the whole text, after `/start`, or `ABCDE-FGHJK` within."""
    words = text.split()
    if words and words[0].lower().startswith("/start"):
        words = words[1:]
    candidate = "".join(words)
    if len(candidate) <= 24 and (code := normalise_code(candidate)) is not None:
        return code
    found = _CARD_CODE.search(text) if len(text) <= 160 else None
    return normalise_code(found.group()) if found else None


def asks_for_new_code(text: str) -> bool:
    """Say whether a short message asks for a (new) code: "lost my code", "code expired"."""
    return len(text) <= 160 and bool(_CODE_WORD.search(text) and _NEED_WORDS.search(text))


def looks_like_code(text: str) -> bool:
    """Say whether a message looks like a mistyped code (so it gets a code-shaped answer)."""
    raw = "".join(ch for ch in text.removeprefix("/start").upper() if ch not in " -_")
    return 8 <= len(raw) <= 12 and raw.isalnum() and any(ch.isdigit() for ch in raw)


async def first_contact(
    session: AsyncSession, inbound: Inbound, text: str, ctx: EngineContext
) -> tuple[ChannelIdentity | None, list[Reply]]:
    """Link a new address by code, or an enrolled phone by proof; return identity and replies.

    An enrolled number's name-and-month answer is read as that before as a code ("Sam
    January" has a code's shape), unless it is a code that was issued ("MARCH-DEC22" names
    two months); anything else it sends is asked for proof.
    """
    enrolled = await _enrolled_unlinked(session, inbound)
    code = code_in(text)
    if enrolled is not None and (proves_identity(text, enrolled) or (
            looks_like_proof(text) and not (code and await is_known_code(session, code)))):
        return await _link_by_proof(session, inbound, text, enrolled, ctx)
    if code is not None or looks_like_code(text):
        return await _link_by_code(session, inbound, code or text, ctx)
    if enrolled is not None:
        return None, [Reply(t("welcome.prove"))]
    if asks_for_new_code(text):
        return None, [Reply(t("welcome.new_code"))]
    return None, [Reply(t("welcome.unknown"))]


async def _enrolled_unlinked(session: AsyncSession, inbound: Inbound) -> Participant | None:
    """Return the person enrolled with this phone number and not yet linked on its channel."""
    if not traits(inbound.channel).address_is_phone:
        return None
    participant = await enrolled_by_phone(session, inbound.address)
    if participant is None or participant.status == ParticipantStatus.DELETED:
        return None
    existing = await identities_of(session, participant.id or 0)
    return None if any(i.channel == inbound.channel for i in existing) else participant


async def _too_many_tries(session: AsyncSession, sender: str, now: datetime) -> bool:
    """Say whether this sender (or everyone) has had too many wrong tries this hour.

    Tries from one sender take turns, so the count holds under concurrency.
    """
    await serialise(session, sender_lock(sender), now=now)
    if await failed_link_attempts(session, address=sender, now=now) >= MAX_FAILED_LINKS_PER_HOUR:
        return True
    if await failed_link_attempts(session, address=None,
                                  now=now) >= MAX_FAILED_LINKS_ALL_PER_HOUR:
        logger.warning("link codes: %d or more wrong tries in the last hour from all senders; "
                       "new senders are refused until it falls", MAX_FAILED_LINKS_ALL_PER_HOUR)
        return True
    return False


async def _link_by_proof(
    session: AsyncSession, inbound: Inbound, text: str, participant: Participant,
    ctx: EngineContext,
) -> tuple[ChannelIdentity | None, list[Reply]]:
    """Link an enrolled number once the sender gives the first name and release month."""
    sender = f"{inbound.channel}:{inbound.address}"
    if not proves_identity(text, participant):
        if await _too_many_tries(session, sender, ctx.now):
            return None, [Reply(t("welcome.too_many_tries"))]
        await audit(session, actor=f"address:{hash_address(sender)}", action="link_failed",
                    now=ctx.now, detail={"reason": "proof"})
        return None, [Reply(t("welcome.not_proved"))]
    if await _too_many_tries(session, sender, ctx.now):
        return None, [Reply(t("welcome.too_many_tries"))]
    identity = await link_identity(session, participant=participant, channel=inbound.channel,
                                   address=inbound.address, now=ctx.now)
    await audit(session, actor=f"participant:{participant.id}", action="link_phone",
                participant_id=participant.id, now=ctx.now)
    return identity, _linked_replies(participant, inbound.channel)


async def _link_by_code(
    session: AsyncSession, inbound: Inbound, code: str, ctx: EngineContext
) -> tuple[ChannelIdentity | None, list[Reply]]:
    sender = f"{inbound.channel}:{inbound.address}"
    actor = f"address:{hash_address(sender)}"
    if await _too_many_tries(session, sender, ctx.now):
        return None, [Reply(t("welcome.too_many_tries"))]
    try:
        participant = await redeem_link_code(session, code=code, now=ctx.now)
    except LinkCodeError as exc:
        await audit(session, actor=actor, action="link_failed", now=ctx.now,
                    detail={"reason": str(exc)})
        key = {"used": "welcome.used_code", "expired": "welcome.expired_code"}.get(
            str(exc), "welcome.bad_code")
        return None, [Reply(t(key))]
    # One participant may link SMS and Telegram; an address belongs to one participant.
    identity = await find_identity(session, channel=inbound.channel, address=inbound.address)
    if identity is None:
        identity = await link_identity(session, participant=participant,
                                       channel=inbound.channel, address=inbound.address,
                                       now=ctx.now)
    await audit(session, actor=f"participant:{participant.id}", action="link_code",
                participant_id=participant.id, now=ctx.now, detail={"channel": inbound.channel})
    return identity, _linked_replies(participant, inbound.channel)


def _linked_replies(participant: Participant, channel: str) -> list[Reply]:
    """Welcome a just-linked person in the language they enrolled with (their first message
    may have been read as English)."""
    name = participant.display_name
    with reading_as(participant.language):
        replies = [Reply(t("welcome.linked", name=name if traits(channel).rich_text
                           else plain_letters(name)))]
        if participant.consent_at is None:
            replies.append(consent_question())
    return replies


async def handle_consent(conv: Conversation, word: str) -> list[Reply]:
    """Take YES as consent; anything else leaves the person unconsented and asks again."""
    p = conv.participant
    if word in YES_WORDS:
        p.consent_at = conv.now
        p.status = ParticipantStatus.ACTIVE
        p.updated_at = conv.now
        conv.session.add(p)
        conv.reset()
        await audit(conv.session, actor=f"participant:{p.id}", action="consent", now=conv.now,
                    participant_id=p.id)
        return [Reply(t("consent.thanks", name=conv.echo(p.display_name))), menu_reply()]
    if word in NO_WORDS:
        return [Reply(t("consent.declined"))]
    return [Reply(t("consent.again")), consent_question()]

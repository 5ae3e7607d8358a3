"""The conversation engine: one inbound message in, replies written to the outbox."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

import handlers.features  # noqa: F401  (registers every keyword and flow)
from handlers import safety, welsh
from handlers.channels import traits
from handlers.conversation import Conversation
from handlers.errors import BadInput
from handlers.linking import consent_question, first_contact, handle_consent
from handlers.meetings import find_meetings
from handlers.menu import menu_reply
from handlers.registry import FLOWS, KEYWORDS, flow_word, takes_free_text
from handlers.textin import (
    HELP_WORDS,
    MAX_LEN,
    bare_word,
    clean,
    command_word,
    is_start,
    is_stop,
)
from handlers.texts import reading_as, t
from handlers.types import EngineContext, Inbound, Reply
from storage.models import (
    ChannelIdentity,
    IdentityStatus,
    MessageKind,
    Participant,
    ParticipantStatus,
    Priority,
)
from storage.outbox import enqueue, last_offered_choices
from storage.participants import (
    attach_inbound,
    find_identity,
    find_linked,
    load_state,
    record_inbound,
)

logger = logging.getLogger(__name__)
FLOW_IDLE_LIMIT = timedelta(hours=6)


@dataclass
class HandleResult:
    """What one inbound message led to."""

    replies: list[Reply] = field(default_factory=list)
    duplicate: bool = False
    participant_id: int | None = None
    outbox_keys: list[str] = field(default_factory=list)


@dataclass
class SenderOf:
    """Who a message is from, as the database says in this transaction."""

    identity: ChannelIdentity | None
    participant: Participant | None


async def find_sender(session: AsyncSession, inbound: Inbound) -> SenderOf:
    """Return the identity and participant a message's address is linked to, if any."""
    return SenderOf(*await find_linked(session, channel=inbound.channel, address=inbound.address))


async def handle_inbound(
    session: AsyncSession, inbound: Inbound, ctx: EngineContext, sender: SenderOf | None = None
) -> HandleResult:
    """Handle one message and write the replies to the outbox; the caller commits.

    `sender`: who it is from, if the caller has just looked in this transaction."""
    provider_id = inbound.provider_id or f"local-{uuid.uuid4().hex}"
    text = clean(inbound.payload or inbound.text)
    sender = sender or await find_sender(session, inbound)
    identity, participant = sender.identity, sender.participant
    if not await record_inbound(session, channel=inbound.channel, provider_id=provider_id,
                                body=text[:MAX_LEN] or None, now=ctx.now,
                                participant_id=participant.id if participant else None,
                                address=inbound.address):
        logger.info("duplicate inbound %s on %s ignored", provider_id, inbound.channel)
        return HandleResult(duplicate=True, participant_id=participant.id if participant else None)

    where: dict[str, Any] = {}
    if identity is None or participant is None:
        with reading_as("cy" if welsh.looks_welsh(text) else "en"):
            replies = await _unknown_sender(session, inbound, text, ctx)
        identity = await find_identity(session, channel=inbound.channel, address=inbound.address)
        participant = await session.get(Participant, identity.participant_id) if identity else None
        if participant is not None and participant.id is not None:
            await attach_inbound(session, channel=inbound.channel, provider_id=provider_id,
                                 participant_id=participant.id)
    else:
        state = await load_state(session, participant.id or 0)
        conv = Conversation(session, ctx, inbound, participant, identity, state)
        with reading_as(participant.language):  # replies answer them: never discreet
            replies, aside = await _known_sender(conv, text)
        where = {"at": conv.position, "aside": True} if aside else {"at": conv.position}
        where["language"] = participant.language  # for buttons the sender adds
    result = HandleResult(replies=replies, participant_id=participant.id if participant else None)
    await _write_replies(session, inbound, provider_id, replies, result, ctx, where)
    return result


async def _unknown_sender(
    session: AsyncSession, inbound: Inbound, text: str, ctx: EngineContext
) -> list[Reply]:
    category = safety.check_crisis(text)
    if category:
        return safety.crisis_replies(category)
    if is_stop(text):
        return [Reply(t("stop.not_linked"))]
    _identity, replies = await first_contact(session, inbound, text, ctx)
    return replies


async def _known_sender(conv: Conversation, raw: str) -> tuple[list[Reply], bool]:
    """Run the safety layer and consent, then the current flow or a keyword.

    Also say whether the replies are an aside: an answer to something else (HELP, WENT, a
    keyword) that left the person where they were in a flow, so numbers still answer it.
    Welsh words are read as their English keywords first; crisis words are read as sent.
    """
    own_words = conv.state.flow != "menu" and takes_free_text(conv.state.flow, conv.state.step)
    text = welsh.to_english(raw, own_words=own_words)
    first = await _before_flows(conv, text, raw)
    if first is not None:
        return first, False
    if conv.state.flow != "menu" and conv.now - conv.state.updated_at > FLOW_IDLE_LIMIT:
        conv.reset()  # a tool left half-done days ago should not swallow today's message
    before = conv.position
    text = await _choice_payload(conv, text)
    replies, by_flow = await _route(conv, text)
    aside = not by_flow and conv.state.flow != "menu" and conv.position == before
    return replies, aside


async def _before_flows(conv: Conversation, text: str, raw: str) -> list[Reply] | None:
    """Answer what comes before any flow: crisis, STOP, START, language, consent, odd
    messages. `raw` is the message as sent, `text` with Welsh keywords read as English."""
    p = conv.participant
    if p.status == ParticipantStatus.DELETED:
        return [Reply(t("welcome.unknown"))]
    category = safety.check_crisis(raw)
    if category:
        await safety.record_crisis(conv, category)
        return safety.crisis_replies(category)
    if is_stop(text):
        return await safety.stop(conv)
    _reactivate(conv.identity, conv)
    if p.status == ParticipantStatus.STOPPED:
        return await _while_stopped(conv, text)
    if is_start(text):
        return _say_hello(conv)
    if (language := welsh.language_asked(text)) is not None:
        return _switch_language(conv, language)
    if p.consent_at is None:
        word = bare_word(text)
        if word == "HELP":
            return [Reply(t("help.text"))]
        return await handle_consent(conv, word or text.upper())
    if conv.inbound.location is not None:
        return await find_meetings(conv, "")
    if not text:
        return [Reply(t("unknown.empty"))]
    if len(text) > MAX_LEN:
        return [Reply(t("unknown.too_long"))]
    return None


async def _while_stopped(conv: Conversation, text: str) -> list[Reply]:
    """Only START (or YES) and HELP mean anything while messages are off."""
    word = bare_word(text)
    if is_start(text) or word == "YES":
        return await safety.start(conv)
    if word in HELP_WORDS:
        return [Reply(t("stop.help"))]
    return [Reply(t("stop.still_stopped"))] if traits(conv.channel).answers_when_stopped else []


def _switch_language(conv: Conversation, language: str) -> list[Reply]:
    """Write in `language` from now on, and say so in it; a flow under way carries on."""
    p = conv.participant
    p.language = language
    p.updated_at = conv.now
    conv.session.add(p)
    with reading_as(language):
        replies = [Reply(t("language.set"))]
        if p.consent_at is None:
            replies.append(consent_question())
        elif conv.state.flow != "menu":
            replies.append(Reply(t("help.in_flow")))
        return replies


def _say_hello(conv: Conversation) -> list[Reply]:
    """Greet a linked person who sends START or /start, and show what they can do."""
    p = conv.participant
    hello = t("menu.hello", name=conv.echo(p.display_name))
    if p.consent_at is None:
        return [Reply(hello), consent_question()]
    conv.reset()
    menu = menu_reply()
    return [dataclasses.replace(menu, text=f"{hello} {menu.text}")]


async def _route(conv: Conversation, text: str) -> tuple[list[Reply], bool]:
    """Answer with a keyword or the current flow; say whether the flow answered."""
    head, rest = command_word(text)
    handler = KEYWORDS.get(head)
    name = conv.state.flow
    flow = FLOWS.get(name) if name != "menu" else None
    # A keyword wins over a flow step, except for the flow's own words (NEXT inside URGE),
    # and in a step that asks for the person's own words: there "Save money for my kids"
    # is an answer, and only a keyword on its own leaves.
    if flow is not None and (flow_word(name, text)
                             or rest and takes_free_text(name, conv.state.step)):
        handler = None
    try:
        if handler is not None:
            return await handler(conv, rest), False
        if flow is not None:
            return await flow(conv, text), True
    except BadInput as exc:
        return [Reply(t(exc.reply_key, **exc.values))], False
    return [Reply(t("unknown.hint"))], False


async def _choice_payload(conv: Conversation, text: str) -> str:
    """On SMS, a bare number picks from the choices of the last question the person got."""
    if traits(conv.channel).buttons or not text.isdigit():
        return text  # Telegram has buttons; a typed number there is the person's own answer
    choices = await last_offered_choices(conv.session, channel=conv.channel,
                                         address=conv.inbound.address, now=conv.now,
                                         at=conv.position)
    if choices and 1 <= int(text) <= len(choices):
        return choices[int(text) - 1]
    return text


def _reactivate(identity: ChannelIdentity, conv: Conversation) -> None:
    """A person writing to us from a blocked identity has unblocked us."""
    if identity.status == IdentityStatus.BLOCKED:
        identity.status = IdentityStatus.ACTIVE
        identity.updated_at = conv.now
        conv.session.add(identity)


async def _write_replies(
    session: AsyncSession,
    inbound: Inbound,
    provider_id: str,
    replies: list[Reply],
    result: HandleResult,
    ctx: EngineContext,
    where: dict[str, Any],
) -> None:
    """Write the replies down in order; `where` notes the flow step they leave the person at."""
    for n, reply in enumerate(replies):
        key = f"reply:{inbound.channel}:{provider_id}:{n}"
        urgent = reply.urgent
        await enqueue(
            session,
            channel=inbound.channel,
            address=inbound.address,
            body=reply.text,
            dedupe_key=key,
            now=ctx.now,
            participant_id=result.participant_id,
            kind=MessageKind.CRISIS if urgent else MessageKind.REPLY,
            priority=Priority.URGENT if urgent else Priority.REPLY,
            not_after=ctx.now + timedelta(hours=24),
            choices=[[c.label, c.payload] for c in reply.choices] or None,
            request_location=reply.request_location,
            meta={"seq": n, "always": True, **where},
        )
        result.outbox_keys.append(key)

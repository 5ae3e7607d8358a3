"""WhatsApp through Twilio: inbound addresses, the 24-hour window, templates, the fallback.

Twilio posts WhatsApp messages to the same messaging webhook as SMS, with
`From=whatsapp:+447...`. They are their own channel, `whatsapp`; the identity's address is
the E.164 number with the `whatsapp:` prefix off (put back only on the wire), so a
participant's WhatsApp and SMS identities share a number but never a row.

Sending. WhatsApp lets a business send free text only within 24 hours of the person's last
message to it (`ChannelIdentity.last_inbound_at`). Inside the window anything goes as free
text. Outside it, what we start goes as an approved template (Twilio Content API:
`ContentSid` plus `ContentVariables`) when one is configured for it (`WHATSAPP_TEMPLATES`);
otherwise the participant's `whatsapp_fallback` decides: "wait" (the row stays queued until
they write, or until its not-after time expires it) or "sms" (sent by SMS to the same number,
noted on the row as `meta.sent_by = "sms"`).

Templates are keyed by what produced the text, most specific first: the row's
`meta["text"]` if a planner named it, then the text key read off the row
(`reminder.meeting_day`, `reminder.meeting_soon`, `reminder.meeting_change`,
`reminder.appointment`, `sequence.<step>`), then the message kind (`reminder`, `sequence`,
`followup`, `broadcast`, ...). Each names its ContentSid (and one per language, e.g. "cy"),
and the variables in order ({{1}}, {{2}}, ...), from: `body` (the whole text as written),
`name`, `meeting` and `when` (a meeting's rows), or the row's `meta["values"]`. A discreet
reader (the WhatsApp default) is sent only templates declared as `discreet.<key>`, and never
a meeting's name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from twilio.base.exceptions import TwilioRestException

import handlers.tools.whatsapp_pref  # noqa: F401  (registers the WHATSAPP keyword)
from bot.channels.sms import (
    TwilioSender,
    _RetryLater,
    _transient,
    _translate,
    _Unreadable,
    normalise_number,
    redact,
)
from bot.config import Settings
from bot.logs import sensitive
from handlers.readers import is_discreet, writing_to
from scheduler.errors import PermanentSendError, SendLater, TransientSendError
from scheduler.quiet import zone_of
from scheduler.reminders import meeting_when, name_for
from scheduler.sender import OutgoingMessage, Sender, SendResult
from storage.db import session_scope
from storage.models import IdentityStatus
from storage.whatsapp_q import WAITING, WindowFacts, note_sent_by_sms, window_facts

logger = logging.getLogger(__name__)

CHANNEL = "whatsapp"
PREFIX = "whatsapp:"
WINDOW = timedelta(hours=24)
# Sent a little before the window closes, a free text could arrive after it: keep a margin.
WINDOW_MARGIN = timedelta(minutes=2)
# A message waiting for the person looks again this often; their next message wakes it at
# once (storage.whatsapp_q.note_inbound), and its not-after time ends the wait.
WAIT_RECHECK = 3600.0
# WhatsApp error codes that say the number cannot be reached on WhatsApp at all.
NOT_ON_WHATSAPP = frozenset({63003})


@dataclass(frozen=True)
class Template:
    """One approved WhatsApp template: its ContentSid per language and its variables."""

    sid: str
    variables: tuple[str, ...] = ()
    languages: Mapping[str, str] = field(default_factory=dict)  # "cy" -> its own ContentSid

    def sid_for(self, language: str) -> str:
        """Return the ContentSid for a reader's language (the default one if none)."""
        return self.languages.get(language, self.sid)


def parse_templates(raw: Mapping[str, Any]) -> dict[str, Template]:
    """Read WHATSAPP_TEMPLATES; raise ValueError naming the entry that is wrong."""
    out: dict[str, Template] = {}
    for key, entry in raw.items():
        sid = entry.get("sid") if isinstance(entry, Mapping) else None
        variables = entry.get("variables", []) if isinstance(entry, Mapping) else None
        if not isinstance(sid, str) or not sid.startswith("HX") or not isinstance(
                variables, list) or not all(isinstance(v, str) for v in variables):
            raise ValueError(f"WHATSAPP_TEMPLATES[{key!r}]: needs \"sid\": \"HX...\" and "
                             f"\"variables\": a list of names")
        languages = {k: v for k, v in entry.items() if k not in ("sid", "variables")
                     and isinstance(v, str)}
        out[key] = Template(sid=sid, variables=tuple(variables), languages=languages)
    return out


def inbound_address(raw_from: str) -> tuple[str, str | None]:
    """Return the channel and the E.164 address of a Twilio `From` (SMS or WhatsApp)."""
    raw = raw_from.strip()
    if raw.lower().startswith(PREFIX):
        return CHANNEL, normalise_number(raw[len(PREFIX):])
    return "sms", normalise_number(raw)


def channel_of(twilio_address: str | None) -> str:
    """Return the channel of an address Twilio shows (a status callback's `To`)."""
    return CHANNEL if (twilio_address or "").lower().startswith(PREFIX) else "sms"


def in_window(last_inbound_at: datetime | None, now: datetime) -> bool:
    """Say whether free text may go now: the person wrote within the last 24 hours."""
    if last_inbound_at is None:
        return False
    return now < _aware(last_inbound_at) + WINDOW - WINDOW_MARGIN


def answers_in_window(facts: WindowFacts, now: datetime) -> bool:
    """Say whether the row answers a message that opened the window, even from someone with
    no identity yet (a stranger's "hi" is answered, not kept waiting for a window it opened)."""
    row = facts.row
    return row is not None and row.dedupe_key.startswith(f"reply:{CHANNEL}:") \
        and in_window(row.created_at, now)


def text_keys(facts: WindowFacts) -> list[str]:
    """Return the template keys that could serve this row, most specific first.

    A discreet reader (what we start must not name recovery on a lock screen) gets only
    templates declared under `discreet.<key>`, as texts have discreet variants.
    """
    keys = _keys(facts)
    if facts.participant is not None and is_discreet(facts.participant, CHANNEL):
        return [f"discreet.{k}" for k in keys]
    return keys


def _keys(facts: WindowFacts) -> list[str]:
    row = facts.row
    if row is None:
        return []
    meta = row.meta or {}
    keys = [str(meta["text"])] if meta.get("text") else []
    if meta.get("change"):
        keys.append("reminder.meeting_change")
    elif isinstance(meta.get("offset"), int):
        keys.append("reminder.meeting_day" if meta["offset"] >= 1440 else "reminder.meeting_soon")
    elif meta.get("appointment"):
        keys.append("reminder.appointment")
    elif meta.get("step"):
        keys.append(f"sequence.{meta['step']}")
    keys.append(str(row.kind))
    return keys


def template_values(facts: WindowFacts) -> dict[str, str]:
    """Return what a template's variables may be filled with, in the reader's language."""
    row, person, meeting = facts.row, facts.participant, facts.meeting
    values: dict[str, str] = {"body": row.body} if row is not None else {}
    if person is not None:
        values["name"] = person.display_name
    occurrence = ((row.meta or {}).get("occurrence") if row is not None else None)
    if meeting is not None and person is not None:
        with writing_to(person, CHANNEL):
            if not is_discreet(person, CHANNEL):
                values["meeting"] = name_for(meeting, CHANNEL)
            if occurrence:
                start = _aware(datetime.fromisoformat(occurrence))
                values["when"] = meeting_when(meeting, start, zone_of(person))
    given = (row.meta or {}).get("values") if row is not None else None
    if isinstance(given, Mapping):
        values.update({str(k): str(v) for k, v in given.items()})
    return values


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass
class WhatsAppSender:
    """Send WhatsApp through Twilio: free text in the window, templates or the fallback out."""

    twilio: TwilioSender  # from "whatsapp:+44..."; reused for free text and its lookup
    engine: AsyncEngine
    templates: Mapping[str, Template] = field(default_factory=dict)
    sms: Sender | None = None  # the "sms" fallback
    channel: str = CHANNEL

    @classmethod
    def from_settings(
        cls, settings: Settings, *, engine: AsyncEngine, sms: Sender | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> WhatsAppSender:
        """Build a sender from the Twilio and WhatsApp settings."""
        assert settings.whatsapp_from_number
        twilio = TwilioSender.from_settings(settings, transport=transport)
        twilio = replace(twilio, from_number=PREFIX + settings.whatsapp_from_number,
                         messaging_service_sid=None, channel=CHANNEL)
        return cls(twilio=twilio, engine=engine, sms=sms,
                   templates=parse_templates(settings.whatsapp_templates))

    def cost(self, message: OutgoingMessage) -> float:
        """Return one: WhatsApp counts messages, not segments."""
        return 1.0

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Send as free text, a template, by SMS, or not yet (SendLater)."""
        now = _aware(message.claimed_at) if message.claimed_at else datetime.now(UTC)
        async with session_scope(self.engine) as session:
            facts = await window_facts(session, outbox_id=message.id, channel=CHANNEL,
                                       address=message.address)
        last = facts.identity.last_inbound_at if facts.identity is not None else None
        if in_window(last, now) or answers_in_window(facts, now):
            return await self._free_text(message)
        chosen = self._template(facts)
        if chosen is not None:
            return await self._send_template(message, facts, *chosen)
        fallback = facts.participant.whatsapp_fallback if facts.participant else "wait"
        if fallback == "sms" and self.sms is not None:
            return await self._by_sms(message, now)
        logger.info("whatsapp outbox #%s to %s waits for the person to write", message.id,
                    redact(message.address))
        raise SendLater(WAITING, seconds=WAIT_RECHECK, code="window")

    async def lookup(self, message: OutgoingMessage) -> SendResult | None:
        """Return Twilio's record of a free-text message (templates are not matched)."""
        return await self.twilio.lookup(self._addressed(message))

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.twilio.aclose()

    def _addressed(self, message: OutgoingMessage) -> OutgoingMessage:
        return replace(message, address=PREFIX + message.address)

    async def _free_text(self, message: OutgoingMessage) -> SendResult:
        try:
            return await self.twilio.send(self._addressed(message))
        except PermanentSendError as exc:
            raise _on_whatsapp(exc) from None

    def _template(self, facts: WindowFacts) -> tuple[Template, dict[str, str]] | None:
        """Return the first configured template for this row whose variables can be filled."""
        values = template_values(facts)
        for key in text_keys(facts):
            template = self.templates.get(key)
            if template is None:
                continue
            missing = [v for v in template.variables if v not in values]
            if not missing:
                return template, values
            logger.warning("whatsapp template %r: no value for %s", key, ", ".join(missing))
        return None

    async def _send_template(self, message: OutgoingMessage, facts: WindowFacts,
                             template: Template, values: dict[str, str]) -> SendResult:
        language = facts.participant.language if facts.participant else "en"
        variables = {str(n): values[name] for n, name in enumerate(template.variables, 1)}
        sensitive(message.address, *variables.values())
        try:
            sent = await self.twilio.client.messages.create_async(
                to=PREFIX + message.address, from_=self.twilio.from_number,
                content_sid=template.sid_for(language),
                content_variables=json.dumps(variables),
                status_callback=self.twilio.status_callback)
        except (_RetryLater, _Unreadable, httpx.TransportError) as exc:
            raise _transient(exc, sending=True) from None
        except TwilioRestException as exc:
            raise _on_whatsapp(_translate(exc)) from None
        if not sent.sid:
            raise TransientSendError("twilio: answer without a sid", maybe_sent=True)
        logger.info("whatsapp outbox #%s to %s sent as template %s: %s", message.id,
                    redact(message.address), template.sid_for(language), sent.sid)
        return SendResult(provider_id=sent.sid, segments=1)

    async def _by_sms(self, message: OutgoingMessage, now: datetime) -> SendResult:
        """Send by SMS instead, as the person chose; an SMS failure leaves WhatsApp alone."""
        assert self.sms is not None
        async with session_scope(self.engine) as session:
            await note_sent_by_sms(session, outbox_id=message.id, now=now)
        try:
            result = await self.sms.send(replace(message, channel="sms"))
        except PermanentSendError as exc:
            # The number's SMS status is not its WhatsApp status: fail the row, not the identity.
            raise PermanentSendError(f"by sms: {exc.reason}", code=exc.code) from None
        logger.info("whatsapp outbox #%s to %s sent by SMS instead", message.id,
                    redact(message.address))
        return result


def _on_whatsapp(exc: PermanentSendError | TransientSendError
                 ) -> PermanentSendError | TransientSendError:
    """Add what WhatsApp's own error codes mean for the number."""
    if isinstance(exc, PermanentSendError) and exc.code and exc.code.isdigit() \
            and int(exc.code) in NOT_ON_WHATSAPP:
        return PermanentSendError("twilio: not on whatsapp", code=exc.code,
                                  identity_status=IdentityStatus.UNREACHABLE)
    return exc

"""The voice line: Twilio Voice webhooks answered with TwiML, in English or Welsh.

A caller whose number is linked (on the line, or by text) hears their next chosen meeting
and the nearest open meetings to their release area, then a menu: 1 more, 2 by text,
3 crisis numbers and Samaritans, 0 again. Anyone else can key the phone code from their
card, or say a town. Every request is signature-checked; every step is logged like a
message (what was pressed, never the code keyed or what was said); nothing is recorded.
What a step needs to remember (the page, the town) rides in the action URL, which Twilio
signs with the request.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Request, Response
from sqlmodel.ext.asyncio.session import AsyncSession
from twilio.twiml.voice_response import Gather, VoiceResponse

from bot.channels import voice_script as script
from bot.channels.inbox import ChannelRuntime, send_replies
from bot.channels.sms import normalise_number, twilio_sid
from bot.channels.webhooks import _signed_form
from bot.logs import sensitive
from handlers.linking import first_contact
from handlers.readers import writing_to
from handlers.texts import reading_as, t
from handlers.types import Inbound
from storage.db import session_scope
from storage.models import Channel, IdentityStatus, ParticipantStatus, Priority
from storage.outbox import enqueue
from storage.participants import find_identity
from storage.voice_q import caller, code_from_phone, log_call_step

logger = logging.getLogger(__name__)
router = APIRouter()

SAMARITANS = "116123"  # free, day or night; dialled as the UK short number
# Language, then Twilio's <Say> voice and <Gather> speech language for it.
VOICES = {"en": ("en-GB", "Polly.Amy"), "cy": ("cy-GB", "Polly.Gwyneth")}
MENU_KEYS = frozenset("0123")
KEY_WAIT = 8  # seconds Gather waits for a key
CODE_WAIT = 12  # seconds between keys of a phone code
TEXT_EXPIRES = timedelta(hours=24)
# Link-refusal texts (handlers.linking's words) and what the line says instead.
REFUSALS = {"welcome.too_many_tries": "voice.too_many_tries",
            "welcome.used_code": "voice.used_code", "welcome.expired_code": "voice.expired_code"}


class Call:
    """One signed request of a call: who, which call, and where to send the next step."""

    def __init__(self, request: Request, params: dict[str, str]) -> None:
        self.runtime: ChannelRuntime = request.app.state.channels
        self.params = params
        self.sid = twilio_sid(params.get("CallSid"))
        self.sender = normalise_number(params.get("From", "")[:64])
        self.now: datetime = self.runtime.clock()
        self.page = _int(request.query_params.get("page"))
        self.near = request.query_params.get("near") or None
        self.language = "en"

    def url(self, path: str, **query: object) -> str:
        """Return the absolute URL of a step (Twilio signs what it requests)."""
        kept = {k: v for k, v in query.items() if v is not None}
        tail = "?" + urlencode(kept) if kept else ""
        return self.runtime.settings.public_base_url + path + tail

    def gather(self, response: VoiceResponse, path: str, *, speech: bool = False,
               code: bool = False, **query: object) -> Gather:
        """Add a Gather in the caller's language whose answer goes to `path`."""
        lang = VOICES[self.language][0]
        inputs = "dtmf speech" if speech and code else "speech" if speech else "dtmf"
        options: dict[str, object] = (
            {"finish_on_key": "#", "timeout": CODE_WAIT} if code
            else {"num_digits": 1, "timeout": KEY_WAIT})
        if speech:
            options["speech_timeout"] = "auto"
        gathered = Gather(input=inputs, action=self.url(path, **query), method="POST",
                          language=lang, **options)
        response.append(gathered)
        return gathered

    def say(self, parent: VoiceResponse | Gather, *texts: str) -> None:
        """Read texts out in the caller's language and voice."""
        lang, voice = VOICES[self.language]
        for text in texts:
            parent.say(text, voice=voice, language=lang)


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) <= 3 else 0


def _xml(response: VoiceResponse) -> Response:
    return Response(str(response), media_type="application/xml")


async def _call(request: Request) -> Call:
    params = await _signed_form(request, request.app.state.channels)
    sensitive(params.get("Digits"), params.get("SpeechResult"))
    return Call(request, params)


def _goodbye(call: Call, response: VoiceResponse, key: str = "voice.no_key") -> Response:
    call.say(response, t(key))
    response.hangup()
    return _xml(response)


def _ask_code(call: Call, *lead: str) -> Response:
    """Ask an unknown caller for the phone code on their card, or a town."""
    response = VoiceResponse()
    call.say(call.gather(response, "/voice/code", speech=True, code=True), *lead)
    return _goodbye(call, response)


def _ask_town(call: Call, *lead: str) -> Response:
    response = VoiceResponse()
    call.say(call.gather(response, "/voice/town", speech=True), *lead, t("voice.ask_town"))
    return _goodbye(call, response)


async def _menu(session: AsyncSession, call: Call, *, lead: tuple[str, ...] = (),
                page: int = 0, briefing: bool = False, listed: bool = True) -> Response:
    """Read out a page of meetings (after the next chosen one, on a briefing), then the menu."""
    person = await caller(session, call.sender) if call.sender else None
    place = script.spoken_place(call.near) if call.near else (
        script.home_place(person) if person else None)
    if place is None:
        return _ask_town(call, *lead, t("voice.no_area")) if person else _ask_code(
            call, *lead, t("voice.ask_code"))
    zone = script.reader_zone(person, call.runtime.settings.tz)
    texts = list(lead)
    if briefing and person is not None and (
            chosen := await script.next_chosen(session, person, call.now)):
        texts.append(script.chosen_line(chosen, zone=zone, now=call.now))
    if listed:
        found = await script.listing(session, place=place, page=page, zone=zone, now=call.now)
        texts += script.listing_lines(found, zone=zone, now=call.now)
    texts.append(t("voice.menu" if person else "voice.menu_unlinked"))
    response = VoiceResponse()
    call.say(call.gather(response, "/voice/menu", page=page, near=call.near), *texts)
    return _goodbye(call, response)


async def _log(session: AsyncSession, call: Call, note: str, person_id: int | None) -> None:
    if call.sid:
        await log_call_step(session, call_sid=call.sid, note=note, now=call.now,
                            participant_id=person_id, address=call.sender)


@router.post("/voice/inbound")
async def voice_inbound(request: Request) -> Response:
    """Answer a call: a linked caller hears their meetings; anyone else is asked for a code."""
    call = await _call(request)
    if call.sid is None:
        return _goodbye(call, VoiceResponse(), "voice.didnt_get")
    async with session_scope(call.runtime.engine) as session:
        person = await caller(session, call.sender) if call.sender else None
        await _log(session, call, "call: answered", person.id if person else None)
        if person is None:
            return _ask_code(call, t("voice.welcome_unknown"))
        call.language = person.language if person.language in VOICES else "en"
        with reading_as(call.language):
            return await _menu(session, call, lead=(t("voice.welcome"),), briefing=True)


@router.post("/voice/menu")
async def voice_menu(request: Request, background: BackgroundTasks) -> Response:
    """Take a menu key: 1 more, 2 by text, 3 crisis numbers, 0 again."""
    call = await _call(request)
    digits = call.params.get("Digits", "")
    key = digits if digits in MENU_KEYS else ""
    async with session_scope(call.runtime.engine) as session:
        person = await caller(session, call.sender) if call.sender else None
        await _log(session, call, f"call: key {key or 'other'}", person.id if person else None)
        if person is not None:
            call.language = person.language if person.language in VOICES else "en"
        with reading_as(call.language):
            if key == "1":
                return await _menu(session, call, page=call.page + 1)
            if key == "2" and person is not None:
                lead = await _send_text(session, call, background)
                return await _menu(session, call, lead=(lead,), page=call.page, listed=False)
            if key == "3":
                return _crisis(call)
            if key == "0":
                return await _menu(session, call, page=call.page, briefing=call.page == 0)
            return await _menu(session, call, lead=(t("voice.didnt_get"),), page=call.page,
                               listed=False)


async def _send_text(session: AsyncSession, call: Call, background: BackgroundTasks) -> str:
    """Queue one text of what was read out to the caller's number; return what to say."""
    person = await caller(session, call.sender) if call.sender else None
    assert person is not None and call.sender and call.sid
    sms = await find_identity(session, channel=Channel.SMS, address=call.sender)
    if person.status == ParticipantStatus.STOPPED or (
            sms is not None and sms.status != IdentityStatus.ACTIVE):
        return t("voice.not_sent")
    place = script.spoken_place(call.near) if call.near else script.home_place(person)
    if place is None:
        return t("voice.didnt_get")
    zone = script.reader_zone(person, call.runtime.settings.tz)
    found = await script.listing(session, place=place, page=call.page, zone=zone, now=call.now)
    chosen = await script.next_chosen(session, person, call.now) if call.page == 0 else None
    with writing_to(person, "sms", started=False):  # they asked: plain wording, their language
        body = script.text_of(found, chosen, participant=person,
                              default_zone=call.runtime.settings.tz, now=call.now)
    key = f"voice:{call.sid}:text:{call.page}:{call.near or ''}"[:200]
    await enqueue(session, channel=Channel.SMS, address=call.sender, body=body, dedupe_key=key,
                  now=call.now, participant_id=person.id, priority=Priority.REPLY,
                  not_after=call.now + TEXT_EXPIRES)
    background.add_task(send_replies, call.runtime, [key])
    return t("voice.sent")


def _crisis(call: Call) -> Response:
    """Read the crisis numbers and offer Samaritans: key 1 or silence puts them through."""
    response = VoiceResponse()
    call.say(call.gather(response, "/voice/crisis", page=call.page, near=call.near),
             t("voice.crisis"), t("voice.crisis_offer"))
    return _put_through(call, response)


def _put_through(call: Call, response: VoiceResponse) -> Response:
    call.say(response, t("voice.putting_through"))
    response.dial(SAMARITANS)
    return _xml(response)


@router.post("/voice/crisis")
async def voice_crisis(request: Request) -> Response:
    """After the crisis numbers: 0 goes back to the menu; anything else dials Samaritans."""
    call = await _call(request)
    back = call.params.get("Digits", "") == "0"
    async with session_scope(call.runtime.engine) as session:
        person = await caller(session, call.sender) if call.sender else None
        await _log(session, call, "call: crisis back" if back else "call: put through",
                   person.id if person else None)
        if person is not None:
            call.language = person.language if person.language in VOICES else "en"
        with reading_as(call.language):
            if back:
                return await _menu(session, call, page=call.page, briefing=call.page == 0)
            return _put_through(call, VoiceResponse())


@router.post("/voice/code")
async def voice_code(request: Request) -> Response:
    """Take a phone code keyed by an unknown caller (or a town they said instead)."""
    call = await _call(request)
    if call.params.get("SpeechResult"):
        return await _town(call)
    digits = "".join(ch for ch in call.params.get("Digits", "") if ch.isdigit())
    async with session_scope(call.runtime.engine) as session:
        if not digits:
            await _log(session, call, "call: no code", None)
            return _ask_code(call, t("voice.ask_code"))
        if call.sender is None:
            await _log(session, call, "call: code from a hidden number", None)
            return _ask_town(call, t("voice.hidden_number"))
        code = code_from_phone(digits)
        if code is None:
            await _log(session, call, "call: code mistyped", None)
            return _ask_code(call, t("voice.bad_number"))
        inbound = Inbound(channel=Channel.VOICE, address=call.sender, text=code,
                          received_at=call.now, provider_id=call.sid)
        identity, replies = await first_contact(session, inbound, code,
                                                call.runtime.context(call.now))
        if identity is None:
            await _log(session, call, "call: code refused", None)
            said = replies[0].text if replies else ""
            key = next((v for k, v in REFUSALS.items() if t(k) == said), "voice.bad_code")
            if key == "voice.too_many_tries":
                return _goodbye(call, VoiceResponse(), key)
            return _ask_code(call, t(key))
        person = await caller(session, call.sender)
        await _log(session, call, "call: code linked", identity.participant_id)
        call.language = person.language if person and person.language in VOICES else "en"
        with reading_as(call.language):
            return await _menu(session, call, lead=(t("voice.linked"),), briefing=True)


@router.post("/voice/town")
async def voice_town(request: Request) -> Response:
    """Take a town the caller said and read out the meetings nearest it."""
    return await _town(await _call(request))


async def _town(call: Call) -> Response:
    place = script.spoken_place(call.params.get("SpeechResult"))
    async with session_scope(call.runtime.engine) as session:
        person = await caller(session, call.sender) if call.sender else None
        pid = person.id if person else None
        if person is not None:
            call.language = person.language if person.language in VOICES else "en"
        with reading_as(call.language):
            if place is None:
                await _log(session, call, "call: town not found", pid)
                return _ask_code(call, t("voice.town_not_found")) if person is None else \
                    _ask_town(call, t("voice.town_not_found"))
            await _log(session, call, f"call: town {place.label}"[:200], pid)
            call.near = place.label
            return await _menu(session, call)

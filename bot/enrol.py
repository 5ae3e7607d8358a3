"""Enrolment by a Champion: the rules it must pass, a participant, their plan and a link code.

The CLI and the staff pages call the same functions here; they only parse input and show
the result or the `EnrolmentError` (which names the field at fault).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import phonenumbers
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Settings
from bot.consent import current_wording
from bot.runtime import open_engine, prepare_database
from handlers.texts import LANGUAGES
from meeting_finder.errors import PlaceNotFound
from meeting_finder.geocode import Place, resolve_place
from storage.db import session_scope
from storage.errors import NotFound
from storage.models import Participant
from storage.participants import enrol, enrolled_by_phone, link_code_expiry, reissue_link_code

CODE_DAYS_AFTER_RELEASE = 60
LATE_ENROLMENT_DAYS = 7  # a release this recent may still be enrolled (a late enrolment)
POSTCODE_PRECISIONS = ("postcode", "sector", "outward")
CHANNELS = ("sms", "telegram")
# Ofcom keeps 07700 900000-900999 for drama: never a real phone, so only for local trials.
DRAMA_FIRST, DRAMA_LAST = 447700900000, 447700900999
MAX_SESSIONS_INSIDE = 500
ALREADY_ENROLLED = "already enrolled as participant"
T = TypeVar("T")


class EnrolmentError(ValueError):
    """An enrolment or new-code request is refused; `field` names what to fix first.

    `problems` holds every field at fault (field -> message, the first one first), so a
    form can show them all at once; the CLI shows the first.
    """

    def __init__(self, field: str, message: str,
                 problems: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.problems = problems or {field: message}


@dataclass(frozen=True)
class EnrolmentForm:
    """What a Champion gives to enrol someone, as typed."""

    prison: str
    name: str
    release_date: date
    postcode: str
    phone: str | None = None
    channel: str = "sms"
    goals: tuple[str, ...] = ()
    consent: bool | None = None  # agreed to the consent wording; None: not asked (the CLI)
    consent_version: str | None = None  # the wording read with them; None: the current one
    staff_review_consent: bool = False  # staff may see that crisis numbers were sent
    sessions_inside: int = 0  # InsideOut or SMART sessions done in prison
    language: str = "en"  # what every text to them is written in: "en" or "cy" (Cymraeg)


@dataclass(frozen=True)
class IssuedCode:
    """A link code to give the person, shown this once."""

    participant_id: int
    name: str
    link_code: str
    expires: date

    def public(self) -> dict[str, Any]:
        """Return what `--json` prints: participant_id, link_code, expires."""
        return {"participant_id": self.participant_id, "link_code": self.link_code,
                "expires": self.expires.isoformat()}


def is_drama_number(e164: str) -> bool:
    """Say whether a +44 number is in Ofcom's drama range 07700 900000-900999."""
    digits = e164.removeprefix("+")
    return digits.isdigit() and DRAMA_FIRST <= int(digits) <= DRAMA_LAST


def check_mobile(raw: str, *, local_mode: bool) -> str:
    """Return a UK mobile number as E.164, or raise EnrolmentError naming the phone."""
    shown = raw.strip()[:40]
    try:
        parsed = phonenumbers.parse(raw.strip(), "GB")
    except phonenumbers.NumberParseException:
        raise EnrolmentError("phone", f"is not a phone number: {shown!r}") from None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if is_drama_number(e164):
        if local_mode:
            return e164
        raise EnrolmentError("phone", f"{shown!r} is a drama number (07700 900xxx); "
                                      "these are allowed only in local mode")
    # +44 mobiles in Guernsey, Jersey and the Isle of Man are reached by UK SMS too.
    if (parsed.country_code != 44 or not phonenumbers.is_valid_number(parsed)
            or phonenumbers.number_type(parsed) != phonenumbers.PhoneNumberType.MOBILE):
        raise EnrolmentError("phone", f"must be a UK mobile number (07...), not {shown!r}")
    return e164


def check_release_date(release_date: date, *, today: date) -> None:
    """Refuse a release date more than LATE_ENROLMENT_DAYS before today."""
    if release_date < today - timedelta(days=LATE_ENROLMENT_DAYS):
        raise EnrolmentError(
            "release_date", f"{release_date.isoformat()} is more than {LATE_ENROLMENT_DAYS} "
                            "days ago; check the date")


def check_place(postcode: str) -> Place:
    """Return the release area for a postcode or town, or raise EnrolmentError."""
    if not postcode.strip():
        raise EnrolmentError("postcode", "must not be empty: enter a postcode or a town")
    try:
        return resolve_place(postcode)
    except PlaceNotFound as exc:
        hint = f" Did you mean {' or '.join(exc.suggestions)}?" if exc.suggestions else ""
        raise EnrolmentError("postcode", f"not recognised: {postcode[:40]!r}.{hint}") from None


def _required(field: str, value: str, limit: int) -> str:
    cleaned = " ".join(value.split())[:limit]
    if not cleaned:
        raise EnrolmentError(field, "must not be empty")
    return cleaned


def check_language(language: str) -> None:
    """Refuse a language we have no texts in."""
    if language not in LANGUAGES:
        raise EnrolmentError("language", "must be English or Cymraeg")


def check_channel(channel: str, phone: str | None, *, sms_needs_phone: bool) -> None:
    """Refuse an unknown channel, or SMS with no number when the number is asked for."""
    if channel not in CHANNELS:
        raise EnrolmentError("channel", f"must be {' or '.join(CHANNELS)}")
    if sms_needs_phone and channel == "sms" and not (phone or "").strip():
        raise EnrolmentError("phone", "is needed for SMS (it is optional for Telegram)")


def check_consent(form: EnrolmentForm) -> str | None:
    """Return the consent wording version agreed to (None if not asked), or raise."""
    if form.consent is None:
        return None
    if not form.consent:
        raise EnrolmentError("consent", "must be agreed before they can be enrolled")
    version = form.consent_version or current_wording().version
    if version != current_wording().version:
        raise EnrolmentError("consent", "wording has changed since the page was opened: "
                                        "read the new wording with them")
    return version


def check_sessions(count: int) -> None:
    """Refuse a count of sessions done inside that cannot be right."""
    if not 0 <= count <= MAX_SESSIONS_INSIDE:
        raise EnrolmentError("sessions_inside", f"must be between 0 and {MAX_SESSIONS_INSIDE}")


@dataclass(frozen=True)
class CheckedEnrolment:
    """An enrolment that passed every rule, with its answers made canonical."""

    prison: str
    name: str
    phone: str | None
    place: Place
    consent_version: str | None


def _collect(problems: dict[str, str], check: Callable[[], T]) -> T | None:
    """Run one check, noting its problem (the first per field) instead of raising."""
    try:
        return check()
    except EnrolmentError as exc:
        problems.setdefault(exc.field, exc.message)
        return None


async def check_enrolment(
    session: AsyncSession, form: EnrolmentForm, *, today: date, local_mode: bool,
    sms_needs_phone: bool = False,
) -> CheckedEnrolment:
    """Check every rule; raise EnrolmentError naming the first field at fault, and all."""
    problems: dict[str, str] = {}
    prison = _collect(problems, lambda: _required("prison", form.prison, 200))
    name = _collect(problems, lambda: _required("name", form.name, 100))
    _collect(problems, lambda: check_channel(form.channel, form.phone,
                                             sms_needs_phone=sms_needs_phone))
    _collect(problems, lambda: check_release_date(form.release_date, today=today))
    phone = _collect(problems, lambda: check_mobile(form.phone or "", local_mode=local_mode)
                     ) if form.phone else None
    place = _collect(problems, lambda: check_place(form.postcode))
    _collect(problems, lambda: check_sessions(form.sessions_inside))
    _collect(problems, lambda: check_language(form.language))
    version = _collect(problems, lambda: check_consent(form))
    if phone is not None:
        existing = await enrolled_by_phone(session, phone)
        if existing is not None:
            problems["phone"] = f"{ALREADY_ENROLLED} {existing.id}"
    if problems or prison is None or name is None or place is None:
        field, message = next(iter(problems.items()))
        raise EnrolmentError(field, message, problems)
    return CheckedEnrolment(prison, name, phone, place, version)


async def enrol_checked(
    session: AsyncSession,
    form: EnrolmentForm,
    *,
    now: datetime,
    today: date,
    local_mode: bool,
    enrolled_by: int | None = None,
    sms_needs_phone: bool = False,
) -> IssuedCode:
    """Check every rule, then enrol; raise EnrolmentError naming the fields at fault."""
    ok = await check_enrolment(session, form, today=today, local_mode=local_mode,
                               sms_needs_phone=sms_needs_phone)
    place = ok.place
    participant, code = await enrol(
        session, prison_name=ok.prison, display_name=ok.name, release_date=form.release_date,
        release_postcode=place.label if place.precision in POSTCODE_PRECISIONS else None,
        region=place.label[:100] if place.precision == "town" else None,
        release_lat=place.lat, release_lon=place.lon, phone=ok.phone, channel=form.channel,
        now=now, goals=[g.strip()[:200] for g in form.goals if g.strip()],
        code_days_after_release=CODE_DAYS_AFTER_RELEASE, enrolled_by=enrolled_by,
        consent_wording_version=ok.consent_version,
        staff_review_consent=bool(ok.consent_version) and form.staff_review_consent,
        sessions_inside=form.sessions_inside,
    )
    assert participant.id is not None
    participant.language = form.language
    session.add(participant)
    expires = link_code_expiry(release_date=form.release_date, now=now,
                               days_after_release=CODE_DAYS_AFTER_RELEASE)
    return IssuedCode(participant.id, ok.name, code, expires.date())


async def new_code(
    session: AsyncSession, *, participant_id: int, now: datetime, issued_by: int | None = None
) -> IssuedCode:
    """Issue a fresh link code and void the old ones; refuse an unknown or deleted person."""
    try:
        code, expires = await reissue_link_code(
            session, participant_id=participant_id, now=now,
            days_after_release=CODE_DAYS_AFTER_RELEASE, issued_by=issued_by)
    except NotFound:
        raise EnrolmentError("participant", f"no participant {participant_id}") from None
    participant = await session.get(Participant, participant_id)  # loaded above: no query
    name = participant.display_name if participant is not None else ""
    return IssuedCode(participant_id, name, code, expires.date())


async def _in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    engine = open_engine(settings)
    try:
        await prepare_database(engine)
        async with session_scope(engine) as session:
            return await work(session)
    finally:
        await engine.dispose()


async def enrol_participant(settings: Settings, form: EnrolmentForm, *, now: datetime
                            ) -> IssuedCode:
    """Enrol a person in the configured database (the CLI's entry)."""
    today = now.astimezone(settings.tz).date()
    return await _in_session(settings, lambda session: enrol_checked(
        session, form, now=now, today=today, local_mode=settings.local_mode))


async def issue_new_code(settings: Settings, *, participant_id: int, now: datetime
                         ) -> IssuedCode:
    """Issue a fresh code in the configured database (the CLI's entry)."""
    return await _in_session(settings, lambda session: new_code(
        session, participant_id=participant_id, now=now))

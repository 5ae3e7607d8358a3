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
from bot.runtime import open_engine, prepare_database
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
T = TypeVar("T")


class EnrolmentError(ValueError):
    """An enrolment or new-code request is refused; `field` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


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


async def enrol_checked(
    session: AsyncSession,
    form: EnrolmentForm,
    *,
    now: datetime,
    today: date,
    local_mode: bool,
    enrolled_by: int | None = None,
) -> IssuedCode:
    """Check every rule, then enrol; raise EnrolmentError naming the first field at fault."""
    prison = _required("prison", form.prison, 200)
    name = _required("name", form.name, 100)
    if form.channel not in CHANNELS:
        raise EnrolmentError("channel", f"must be {' or '.join(CHANNELS)}")
    check_release_date(form.release_date, today=today)
    phone = check_mobile(form.phone, local_mode=local_mode) if form.phone else None
    place = check_place(form.postcode)
    if phone is not None:
        existing = await enrolled_by_phone(session, phone)
        if existing is not None:
            raise EnrolmentError("phone", f"already enrolled as participant {existing.id}")
    participant, code = await enrol(
        session, prison_name=prison, display_name=name, release_date=form.release_date,
        release_postcode=place.label if place.precision in POSTCODE_PRECISIONS else None,
        region=place.label[:100] if place.precision == "town" else None,
        release_lat=place.lat, release_lon=place.lon, phone=phone, channel=form.channel,
        now=now, goals=[g.strip()[:200] for g in form.goals if g.strip()],
        code_days_after_release=CODE_DAYS_AFTER_RELEASE, enrolled_by=enrolled_by,
    )
    assert participant.id is not None
    expires = link_code_expiry(release_date=form.release_date, now=now,
                               days_after_release=CODE_DAYS_AFTER_RELEASE)
    return IssuedCode(participant.id, name, code, expires.date())


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

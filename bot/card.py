"""The release card: what a person carries out of the gate to link up and find a meeting.

One A5 page in large plain type: their first name, a link code, the number to text it to, a
QR code of the Telegram deep link, the nearest open meetings and the crisis numbers. Nothing
on it may read as a record of where they were or why (`PLAIN_WORDS_ONLY`): a card is easily
lost, and whoever picks it up must learn nothing from it.

A code is stored only as a hash, so a card can show one only when it is issued: printing
issues a fresh code and voids the old (`bot.enrol.new_code`). The staff page and the PDF
both build the card here; `bot.card_pdf` draws it.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import phonenumbers
import qrcode
import qrcode.constants
from qrcode.image.svg import SvgPathImage
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Settings
from meeting_finder.search import find_nearest
from storage.models import Meeting, Participant
from storage.voice_q import grouped_phone_code

MEETINGS_ON_CARD = 3
MEETINGS_LOOKED_AT = 8  # a few spare, for meetings whose own text is not plain
FORBIDDEN_WORDS = ("prison", "drug", "addiction")
PLAIN_WORDS_ONLY = re.compile("|".join(FORBIDDEN_WORDS), re.IGNORECASE)
UK_ZONES = frozenset({"Europe/London", "Europe/Belfast", "Europe/Guernsey", "Europe/Jersey",
                      "Europe/Isle_of_Man", "GB", "GB-Eire"})
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class CrisisLine:
    """A number to call in a crisis, as the card shows it."""

    name: str
    number: str
    note: str


CRISIS_LINES = (
    CrisisLine("Samaritans", "116 123", "free, day or night"),
    CrisisLine("NHS", "111, option 2", "mental health help"),
    CrisisLine("Emergency", "999", "police, ambulance, fire"),
)


@dataclass(frozen=True)
class CardMeeting:
    """One suggested meeting: when (in its own zone) and where."""

    when: str  # "Tuesday 6:30pm", with the zone added when it is not UK time
    place: str  # venue, address and postcode as the meeting list gives them


@dataclass(frozen=True)
class ReleaseCard:
    """Everything printed on a release card (code and link only when a code was issued)."""

    first_name: str
    code: str | None
    code_expires: date | None
    sms_number: str | None  # national format, e.g. 07700 900001; None when SMS is off
    telegram_link: str | None  # None without a code or without TELEGRAM_BOT_USERNAME
    meetings: tuple[CardMeeting, ...]
    crisis: tuple[CrisisLine, ...] = CRISIS_LINES

    @property
    def phone_code(self) -> str | None:
        """Return the digits-only code to key in when calling the voice line, grouped."""
        return grouped_phone_code(self.code) if self.code else None

    def face_text(self) -> str:
        """Return every word printed on the card, for the plain-words check."""
        parts = [self.first_name, self.code or "", self.sms_number or ""]
        parts += [f"{m.when} {m.place}" for m in self.meetings]
        parts += [f"{c.name} {c.number} {c.note}" for c in self.crisis]
        return " ".join(parts)


def first_name(display_name: str) -> str:
    """Return the first word of the name a person wants to be called."""
    words = display_name.split()
    return words[0] if words else ""


def national_number(e164: str | None) -> str | None:
    """Return a UK number as people write it (`07700 900001`), or None if it is not one."""
    if not e164:
        return None
    try:
        parsed = phonenumbers.parse(e164, "GB")
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def sms_number(settings: Settings) -> str | None:
    """Return the number participants text, in national format; None when SMS is off."""
    return national_number(settings.twilio_from_number) if settings.twilio_enabled else None


def telegram_link(bot_username: str | None, code: str | None) -> str | None:
    """Return the deep link that starts the bot with a code: `https://t.me/<bot>?start=<code>`."""
    if not bot_username or not code:
        return None
    return f"https://t.me/{bot_username}?start={code.replace('-', '')}"


def _qr(data: str) -> qrcode.QRCode:
    made = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    made.add_data(data)
    made.make(fit=True)
    return made


def qr_matrix(data: str) -> list[list[bool]]:
    """Return a QR code's modules, quiet zone included (True is dark)."""
    return [list(map(bool, row)) for row in _qr(data).get_matrix()]


def qr_svg_data_uri(data: str) -> str:
    """Return a QR code as an SVG `data:` URI (an <img> the staff pages' CSP allows)."""
    svg = _qr(data).make_image(image_factory=SvgPathImage).to_string()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


def is_plain(text: str) -> bool:
    """Say whether text is free of the words a card must never show."""
    return PLAIN_WORDS_ONLY.search(text) is None


def clock(at: time) -> str:
    """Return a time of day as people say it: `6:30pm`, `10am`."""
    suffix = "am" if at.hour < 12 else "pm"
    minutes = f":{at.minute:02d}" if at.minute else ""
    return f"{at.hour % 12 or 12}{minutes}{suffix}"


def card_meeting(meeting: Meeting) -> CardMeeting:
    """Describe a meeting for the card: its day and time in its own zone, and its address."""
    when = DAYS[meeting.weekday]
    if meeting.start_time is not None:
        when += f" {clock(meeting.start_time)}"
    if meeting.timezone and meeting.timezone not in UK_ZONES:
        when += f" ({meeting.timezone} time)"
    parts = [p.strip() for p in (meeting.venue, meeting.address) if p and p.strip()]
    postcode = (meeting.postcode or "").strip()
    if postcode and not any(postcode.lower() in p.lower() for p in parts):
        parts.append(postcode)
    return CardMeeting(when, ", ".join(parts))


async def nearest_meetings(
    session: AsyncSession, participant: Participant, *, now: datetime, tz: ZoneInfo
) -> tuple[CardMeeting, ...]:
    """Return the nearest open meetings to the release area whose text is plain."""
    if participant.release_lat is None or participant.release_lon is None:
        return ()
    found = await find_nearest(session, lat=participant.release_lat,
                               lon=participant.release_lon, now=now, tz=tz,
                               limit=MEETINGS_LOOKED_AT)
    shown = [card_meeting(hit.meeting) for hit in found.hits]
    # A venue such as "the ... dependency unit" would say too much: the next one instead.
    plain = [m for m in shown if is_plain(f"{m.when} {m.place}")]
    return tuple(plain[:MEETINGS_ON_CARD])


async def build_card(
    session: AsyncSession,
    participant: Participant,
    *,
    settings: Settings,
    now: datetime,
    code: str | None = None,
    code_expires: date | None = None,
) -> ReleaseCard:
    """Gather what a participant's card shows (a preview when no code is given)."""
    name = first_name(participant.display_name)
    return ReleaseCard(
        first_name=name if is_plain(name) else "",
        code=code,
        code_expires=code_expires if code else None,
        sms_number=sms_number(settings),
        telegram_link=telegram_link(settings.telegram_bot_username, code),
        meetings=await nearest_meetings(session, participant, now=now, tz=settings.tz),
    )

"""The voice line's storage: who a caller is, the call log, and the digits-only phone code.

A link code is ten symbols of CODE_ALPHABET (50 bits) and only its hash is kept, so a code
typed on a keypad cannot be matched letter by letter (2 is A, B, C or 2). Instead the card
prints a *phone code*: the same 50 bits written as 16 decimal digits, plus one Luhn check
digit. It turns back into the link code exactly, so it needs nothing stored and is as hard
to guess as the code itself; the check digit catches a mistyped key before it counts as a
wrong try.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Channel, InboundMessage, Participant, ParticipantStatus
from storage.participants import (
    CODE_ALPHABET,
    CODE_LENGTH,
    find_identity,
    normalise_code,
    record_inbound,
)

PHONE_CODE_DATA = 16  # decimal digits holding the code's 50 bits (2**50 < 10**16)
PHONE_CODE_LENGTH = PHONE_CODE_DATA + 1  # and a Luhn check digit
# A caller is known by an address they proved was theirs, on the line itself or by text.
CALLER_CHANNELS = (Channel.VOICE, Channel.SMS)


def _luhn_digit(digits: str) -> str:
    """Return the Luhn check digit for a string of digits."""
    total = 0
    for n, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if n % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def phone_code(code: str) -> str:
    """Return the digits-only phone code printed on a card for a link code (17 digits)."""
    canonical = normalise_code(code)
    if canonical is None:
        raise ValueError("not a link code")
    value = 0
    for ch in canonical:
        value = value * len(CODE_ALPHABET) + CODE_ALPHABET.index(ch)
    data = f"{value:0{PHONE_CODE_DATA}d}"
    return data + _luhn_digit(data)


def grouped_phone_code(code: str) -> str:
    """Return the phone code grouped for printing: `0123 4567 8901 2345 6`."""
    digits = phone_code(code)
    return " ".join(digits[i:i + 4] for i in range(0, len(digits), 4))


def code_from_phone(digits: str) -> str | None:
    """Return the link code a keyed phone code stands for, or None if it cannot be one."""
    digits = "".join(ch for ch in digits if ch.isdigit())
    if len(digits) != PHONE_CODE_LENGTH:
        return None
    data, check = digits[:-1], digits[-1]
    if _luhn_digit(data) != check:
        return None
    value = int(data)
    if value >= len(CODE_ALPHABET) ** CODE_LENGTH:
        return None
    symbols = []
    for _ in range(CODE_LENGTH):
        value, rest = divmod(value, len(CODE_ALPHABET))
        symbols.append(CODE_ALPHABET[rest])
    return "".join(reversed(symbols))


async def caller(session: AsyncSession, address: str) -> Participant | None:
    """Return the participant a caller id belongs to: linked on the line or by text.

    A number only enrolled (never linked) is not enough: whoever has it now has not shown
    the card, so they hear nothing personal.
    """
    for channel in CALLER_CHANNELS:
        identity = await find_identity(session, channel=channel, address=address)
        if identity is None:
            continue
        participant = await session.get(Participant, identity.participant_id)
        if participant is not None and participant.status != ParticipantStatus.DELETED:
            return participant
    return None


async def log_call_step(
    session: AsyncSession,
    *,
    call_sid: str,
    note: str,
    now: datetime,
    participant_id: int | None = None,
    address: str | None = None,
) -> None:
    """Log one step of a call as an inbound message: what was chosen, never what was said."""
    prefix = f"{call_sid}:"
    steps = (await session.exec(
        select(func.count()).select_from(InboundMessage)
        .where(InboundMessage.channel == Channel.VOICE)
        .where(col(InboundMessage.provider_id).startswith(prefix, autoescape=True))
    )).one()
    await record_inbound(session, channel=Channel.VOICE, provider_id=f"{prefix}{int(steps)}",
                         body=note, now=now, participant_id=participant_id, address=address)

"""People: prisons, staff, participants, their channel identities and link codes."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import AutoString, Field, SQLModel

from storage.crypto import SealedAddress, SealedText
from storage.models.common import JSONText, UTCDateTime, utcnow


class StaffRole(StrEnum):
    CHAMPION = "champion"  # prison staff who enrol people before release
    COORDINATOR = "coordinator"  # keeps meetings current and sends broadcasts
    ADMIN = "admin"  # operator


class ParticipantStatus(StrEnum):
    ENROLLED = "enrolled"  # plan written, not linked yet
    ACTIVE = "active"  # linked and consented
    STOPPED = "stopped"  # texted STOP: nothing is sent until START
    DELETED = "deleted"  # personal data erased; only anonymous counts remain


class Channel(StrEnum):
    SMS = "sms"
    TELEGRAM = "telegram"
    CONSOLE = "console"
    WHATSAPP = "whatsapp"  # through Twilio; address "+447..." (the "whatsapp:" prefix off)
    VOICE = "voice"  # calls to the Twilio voice line; logged like messages, never recorded
    SIM_SMS = "sim_sms"  # the staff simulator, shown as SMS; no sender serves it
    SIM_TELEGRAM = "sim_telegram"  # the staff simulator, shown as Telegram


class IdentityStatus(StrEnum):
    ACTIVE = "active"  # reachable
    BLOCKED = "blocked"  # Telegram user blocked the bot
    UNREACHABLE = "unreachable"  # number invalid or not a mobile
    OPTED_OUT = "opted_out"  # carrier-level unsubscribe (Twilio 21610)


class Prison(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=AutoString(200), unique=True)
    region: str | None = Field(default=None, sa_type=AutoString(100))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StaffUser(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_type=AutoString(254), unique=True)  # lower case; the sign-in name
    display_name: str = Field(sa_type=AutoString(200))
    role: StaffRole = Field(sa_type=AutoString(20))
    prison_id: int | None = Field(default=None, foreign_key="prison.id")  # a Champion's prison
    region: str | None = Field(default=None, sa_type=AutoString(100))  # a coordinator's region
    password_hash: str = Field(sa_type=AutoString(300))  # argon2id, with its salt and costs
    must_change_password: bool = True  # a one-time password: the next sign-in must change it
    failed_logins: int = 0  # wrong passwords in a row since the last sign-in or lock
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    session_epoch: int = 0  # signing out adds one, ending every session begun before
    telegram_id: str | None = Field(default=None, sa_type=AutoString(64))
    # A one-time code (its hash) a coordinator sends the bot to link their Telegram account.
    telegram_link_hash: str | None = Field(default=None, sa_type=AutoString(128))
    telegram_link_expires: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ParticipantBase(SQLModel):
    # The name they want to be called (sealed with their data key).
    display_name: str = Field(sa_type=SealedText(erased=""))
    release_date: date
    release_postcode: str | None = Field(default=None, sa_type=AutoString(10))
    # E.164, sealed deterministically (see storage.crypto), so it can still be looked up.
    phone: str | None = Field(default=None, sa_type=SealedAddress, index=True)
    preferred_channel: Channel = Field(default=Channel.SMS, sa_type=AutoString(20))


class ParticipantCreate(ParticipantBase):
    prison_id: int


class Participant(ParticipantBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    prison_id: int | None = Field(default=None, foreign_key="prison.id", index=True)
    enrolled_by: int | None = Field(default=None, foreign_key="staffuser.id")
    status: ParticipantStatus = Field(
        default=ParticipantStatus.ENROLLED, sa_type=AutoString(20), index=True
    )
    release_lat: float | None = None
    release_lon: float | None = None
    region: str | None = Field(default=None, sa_type=AutoString(100))
    consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # said YES by text
    # The consent a Champion records at enrolment: when, by whom, and which wording was read.
    consent_recorded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    consent_recorded_by: int | None = Field(default=None, foreign_key="staffuser.id")
    consent_wording_version: str | None = Field(default=None, sa_type=AutoString(20))
    staff_review_consent: bool = False  # may staff see that a crisis reply was sent?
    # When they actually walked out (release times are uncertain); the sequence starts here.
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sessions_inside: int = 0  # InsideOut or SMART sessions done in prison
    opted_out_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    timezone: str = Field(default="Europe/London", sa_type=AutoString(64))
    quiet_start_hour: int = 21  # local hour when quiet time begins
    quiet_end_hour: int = 8  # local hour when quiet time ends
    reminder_offsets: list[int] | None = Field(
        default_factory=lambda: [1440, 60], sa_type=JSONText
    )  # minutes before a chosen meeting; empty list turns meeting reminders off
    sessions_count: int = 0
    hours_total: float = 0.0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    language: str = Field(default="en", sa_type=AutoString(8))  # "en" or "cy" (Welsh)
    # Discreet wording (no recovery, drugs, prison or SMART on the first line of what we
    # start); None: the channel's default (on for SMS, see handlers.channels).
    discreet: bool | None = None
    # A WhatsApp message we start outside the 24-hour window with no template: "wait" for
    # the person to write, or "sms" to send it by text instead.
    whatsapp_fallback: str = Field(default="wait", sa_type=AutoString(8))
    # Their data key (ParticipantKey.id); None once erased: what it sealed is unreadable.
    key_id: str | None = Field(default=None, sa_type=AutoString(32))


class ParticipantPublic(ParticipantBase):
    id: int
    status: ParticipantStatus
    sessions_count: int


class ChannelIdentity(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("channel", "address", name="uq_identity_channel_address"),)

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    channel: Channel = Field(sa_type=AutoString(20))
    address: str = Field(sa_type=SealedAddress)  # E.164 number or Telegram chat id, sealed
    status: IdentityStatus = Field(default=IdentityStatus.ACTIVE, sa_type=AutoString(20))
    error_code: str | None = Field(default=None, sa_type=AutoString(40))
    linked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # When this address last wrote to us (WhatsApp's 24-hour free-text window runs from it).
    last_inbound_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def urn(self) -> str:
        """Return the URN-like address, e.g. `tel:+447700900123` or `telegram:123`."""
        scheme = "tel" if self.channel == Channel.SMS else str(self.channel)
        return f"{scheme}:{self.address}"


class ParticipantKey(SQLModel, table=True):
    """A participant's data key, wrapped by the master key; DELETE deletes it."""

    id: str = Field(primary_key=True, sa_type=AutoString(32))  # random; values name it
    wrapped: str = Field(sa_type=AutoString(120))  # "<master id>:<base64 nonce+key+tag>"
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LinkCode(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    code_hash: str = Field(sa_type=AutoString(64), unique=True)  # sha256; the code is not kept
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    failed_attempts: int = 0


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(sa_type=AutoString(100))  # "staff:3", "participant:7", "system"
    action: str = Field(sa_type=AutoString(60))
    participant_id: int | None = Field(default=None, index=True)
    detail: dict[str, Any] | None = Field(default=None, sa_type=JSONText)  # never bodies or PII

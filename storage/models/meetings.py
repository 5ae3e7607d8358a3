"""Peer-led meetings, who chose them, and who went."""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import AutoString, Field, SQLModel

from storage.models.common import JSONText, UTCDateTime, utcnow


class Attendance(StrEnum):
    IN_PERSON = "in_person"
    ONLINE = "online"
    HYBRID = "hybrid"


class Access(StrEnum):
    OPEN = "open"  # anyone may come
    CLOSED = "closed"  # treatment-service clients only: never offered to participants
    PRISON = "prison"  # inside a prison: never offered to released participants


class MeetingStatus(StrEnum):
    ACTIVE = "active"  # running
    SUSPENDED = "suspended"  # paused for now
    CANCELLED = "cancelled"  # stopped for good, or vanished from its feed


class Meeting(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_type=AutoString(200), unique=True)
    name: str = Field(sa_type=AutoString(300))
    weekday: int = Field(index=True)  # 0 = Monday ... 6 = Sunday (Meeting Guide uses 0 = Sunday)
    start_time: time | None = None  # local wall-clock time in `timezone`
    end_time: time | None = None
    # IANA zone, or None when nobody said (never guessed): such a meeting is not offered.
    timezone: str | None = Field(default=None, sa_type=AutoString(64))
    venue: str | None = Field(default=None, sa_type=AutoString(300))
    address: str | None = Field(default=None, sa_type=AutoString(500))
    # The address is only a town or area (an online meeting's home), never somewhere to go.
    approximate: bool = False
    location_notes: str | None = Field(default=None, sa_type=AutoString(2000))
    postcode: str | None = Field(default=None, sa_type=AutoString(20))
    region: str | None = Field(default=None, sa_type=AutoString(200), index=True)
    lat: float | None = Field(default=None, index=True)
    lon: float | None = Field(default=None)
    attendance: Attendance = Field(default=Attendance.IN_PERSON, sa_type=AutoString(20))
    access: Access = Field(default=Access.OPEN, sa_type=AutoString(20))
    conference_url: str | None = Field(default=None, sa_type=AutoString(500))
    conference_url_notes: str | None = Field(default=None, sa_type=AutoString(1000))
    # A valid number in E.164, then any pauses and ids: "+19292056099,,8424653#".
    conference_phone: str | None = Field(default=None, sa_type=AutoString(100))
    conference_phone_notes: str | None = Field(default=None, sa_type=AutoString(1000))
    types: list[str] | None = Field(default_factory=list, sa_type=JSONText)
    contact: str | None = Field(default=None, sa_type=AutoString(300))  # for first-timers
    contact_name: str | None = Field(default=None, sa_type=AutoString(300))
    contact_phone: str | None = Field(default=None, sa_type=AutoString(100))
    contact_email: str | None = Field(default=None, sa_type=AutoString(300))
    group_name: str | None = Field(default=None, sa_type=AutoString(300))  # feed's `group`
    district: str | None = Field(default=None, sa_type=AutoString(200))
    notes: str | None = Field(default=None, sa_type=AutoString(2000))
    status: MeetingStatus = Field(default=MeetingStatus.ACTIVE, sa_type=AutoString(20))
    source: str | None = Field(default=None, sa_type=AutoString(500))  # feed it came from
    demo: bool = False  # fictional demo data
    updated: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Local dates ("2026-12-08") a coordinator cancelled one week: no start on those days.
    cancelled_dates: list[str] | None = Field(default_factory=list, sa_type=JSONText)
    status_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A coordinator checked it runs despite "it didn't run" reports: older reports are answered.
    confirmed_running_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class FeedSource(SQLModel, table=True):
    """A meeting feed a coordinator added: a URL refreshed daily, or an uploaded file."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=AutoString(200), unique=True)
    url: str | None = Field(default=None, sa_type=AutoString(1000))  # None for an upload
    format: str = Field(default="auto", sa_type=AutoString(20))
    timezone: str = Field(sa_type=AutoString(64))  # IANA zone for rows that name none
    region: str | None = Field(default=None, sa_type=AutoString(100))  # whose it is
    created_by: str = Field(sa_type=AutoString(254))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_result: dict[str, Any] | None = Field(default=None, sa_type=JSONText)
    last_error: str | None = Field(default=None, sa_type=AutoString(500))


class MeetingSubscription(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("participant_id", "meeting_id", name="uq_subscription_pair"),
    )

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    meeting_id: int = Field(foreign_key="meeting.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AttendanceOutcome(StrEnum):
    ATTENDED = "attended"  # counts toward 10 sessions
    MISSED = "missed"  # did not go
    NOT_RUNNING = "not_running"  # went, or tried, and it did not run: flagged to coordinators


class AttendanceRecord(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    meeting_id: int | None = Field(default=None, foreign_key="meeting.id", index=True)
    occurrence_start: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: AttendanceOutcome = Field(sa_type=AutoString(20))
    hours: float = 0.0
    reported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

"""The aftercare plan: goals, appointments and key contacts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import AutoString, Field, SQLModel

from storage.crypto import SealedJSON, SealedText
from storage.models.common import UTCDateTime, utcnow


class AppointmentKind(StrEnum):
    PROBATION = "probation"
    TREATMENT = "treatment"  # community drug and alcohol service
    PRESCRIPTION = "prescription"  # e.g. opioid substitution pick-up
    GP = "gp"
    HOUSING = "housing"
    OTHER = "other"


class AftercarePlan(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", unique=True)
    goals: list[str] | None = Field(default_factory=list, sa_type=SealedJSON(erased="[]"))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Appointment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    kind: AppointmentKind = Field(default=AppointmentKind.OTHER, sa_type=AutoString(20))
    starts_at: datetime = Field(sa_type=UTCDateTime, index=True)
    place: str | None = Field(default=None, sa_type=SealedText)  # sealed: can say who they see
    note: str | None = Field(default=None, sa_type=SealedText)
    cancelled: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class KeyContact(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    name: str = Field(sa_type=SealedText(erased=""))
    role: str | None = Field(default=None, sa_type=AutoString(100))  # "probation officer"
    phone: str | None = Field(default=None, sa_type=SealedText)

"""SMART tool entries: urge logs, cost-benefit analyses, check-ins, crisis events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import AutoString, Field, SQLModel

from storage.crypto import SealedJSON, SealedText
from storage.models.common import UTCDateTime, utcnow


class ToolKind(StrEnum):
    URGE = "urge"  # an urge log: when, strength before/after, what helped
    CBA = "cba"  # cost-benefit analysis: four boxes


class ToolEntry(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    kind: ToolKind = Field(sa_type=AutoString(20))
    data: dict[str, Any] | None = Field(default_factory=dict, sa_type=SealedJSON)  # sealed
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CheckIn(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    mood: int | None = None  # 0-10
    craving: int | None = None  # 0-10
    note: str | None = Field(default=None, sa_type=SealedText)  # what they typed, sealed


class CrisisEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    channel: str = Field(sa_type=AutoString(20))
    category: str = Field(sa_type=AutoString(40))  # suicide, self_harm, overdose, danger
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

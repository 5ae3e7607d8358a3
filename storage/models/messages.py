"""Messages in and out, conversation state, and broadcasts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Float, Index, Text, UniqueConstraint, text
from sqlmodel import AutoString, Field, SQLModel

from storage.crypto import SealedAddress, SealedJSON, SealedText
from storage.models.common import JSONText, UTCDateTime, utcnow


class OutboxStatus(StrEnum):
    QUEUED = "queued"  # written down, waiting for its due time
    SENDING = "sending"  # claimed by a dispatcher; back to queued if that worker dies
    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"  # the provider confirmed delivery
    FAILED = "failed"  # permanent failure; `error` says why
    EXPIRED = "expired"  # not sent before its not-after time
    CANCELLED = "cancelled"  # withdrawn (meeting cancelled, STOP, DELETE)


class MessageKind(StrEnum):
    REPLY = "reply"  # a direct answer to something the person just sent
    CRISIS = "crisis"  # crisis numbers: never deferred
    REMINDER = "reminder"
    SEQUENCE = "sequence"  # release-day welcome, check-in prompts
    FOLLOWUP = "followup"  # "did you make it?", urge-surfing check
    BROADCAST = "broadcast"
    TOOL = "tool"


class Priority:
    """Lower numbers go first."""

    URGENT = 0
    REPLY = 10
    SCHEDULED = 50
    BULK = 90


class InboundMessage(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("channel", "provider_id", name="uq_inbound_provider"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(sa_type=AutoString(20))
    provider_id: str = Field(sa_type=AutoString(100))  # MessageSid, update_id, or local id
    participant_id: int | None = Field(default=None, index=True)
    # Hash of "channel:address", so DELETE also finds what was sent before linking.
    address_hash: str | None = Field(default=None, sa_type=AutoString(16), index=True)
    body: str | None = Field(default=None, sa_type=SealedText)  # sealed; erased on DELETE
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# Queued rows of the urgent lane (claims_q.LANE_SPLIT), as SQL with its constants written
# in: a partial index is used only by a query that says the same with no parameters.
QUEUED_URGENT = f"status = 'queued' AND priority < {Priority.SCHEDULED}"


class OutboundMessage(SQLModel, table=True):
    __table_args__ = (
        Index("ix_outbox_status_due", "status", "due_at"),
        # Per-address order: "is an earlier message to this address still pending?", and
        # "does a due one wait behind this?" (answered from the index alone; migration 0012).
        Index("ix_outbox_address_due", "channel", "address", "status", "due_at"),
        # When the urgent lane's next row is due, without walking every queued reminder.
        Index("ix_outbox_queued_urgent_due", "due_at", sqlite_where=text(QUEUED_URGENT),
              postgresql_where=text(QUEUED_URGENT)),
    )

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int | None = Field(default=None, index=True)
    channel: str = Field(sa_type=AutoString(20))
    address: str = Field(sa_type=SealedAddress)
    body: str = Field(sa_type=SealedText(erased=""))
    choices: list[list[str]] | None = Field(default=None, sa_type=JSONText)  # [[label, payload]]
    request_location: bool = False
    kind: MessageKind = Field(default=MessageKind.REPLY, sa_type=AutoString(20))
    priority: int = Priority.REPLY
    due_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    not_after: datetime | None = Field(default=None, sa_type=UTCDateTime)
    dedupe_key: str = Field(sa_type=AutoString(200), unique=True)
    status: OutboxStatus = Field(default=OutboxStatus.QUEUED, sa_type=AutoString(20))
    attempts: int = 0
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claim_token: str | None = Field(default=None, sa_type=AutoString(40))  # which worker holds it
    inflight_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # handed to provider
    provider_id: str | None = Field(default=None, sa_type=AutoString(100), index=True)
    error: str | None = Field(default=None, sa_type=AutoString(300))
    segments: int | None = None
    meeting_id: int | None = Field(default=None, index=True)
    appointment_id: int | None = Field(default=None, index=True)
    broadcast_id: int | None = Field(default=None, index=True)
    meta: dict[str, Any] | None = Field(default=None, sa_type=JSONText)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConversationState(SQLModel, table=True):
    participant_id: int = Field(primary_key=True, foreign_key="participant.id")
    flow: str = Field(default="menu", sa_type=AutoString(40))
    step: str = Field(default="", sa_type=AutoString(40))
    data: dict[str, Any] | None = Field(default_factory=dict, sa_type=SealedJSON)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Broadcast(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    created_by: str = Field(sa_type=AutoString(100))
    audience: dict[str, Any] | None = Field(default=None, sa_type=JSONText)
    text: str = Field(sa_type=Text)
    audience_count: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    staff_id: int | None = Field(default=None, index=True)  # who sent it from the console
    # The sender's region (a coordinator's): coordinators see their own region's broadcasts.
    region: str | None = Field(default=None, sa_type=AutoString(100))


class RateBucket(SQLModel, table=True):
    """A send budget shared by every process (GCRA state in epoch seconds)."""

    key: str = Field(primary_key=True, sa_type=AutoString(80))  # channel, or hashed chat
    tat: float = Field(default=0.0, sa_type=Float)  # theoretical arrival time of the next unit
    hold_crisis: float = Field(default=0.0, sa_type=Float)  # crisis waiter holds the slot
    hold_reply: float = Field(default=0.0, sa_type=Float)  # a reply waiter holds the slot
    paused: float = Field(default=0.0, sa_type=Float)  # retry_after or outage pause ends

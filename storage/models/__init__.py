"""All tables. Import from here so every table is registered on the metadata."""

from storage.models.common import JSONText, UTCDateTime, utcnow
from storage.models.meetings import (
    Access,
    Attendance,
    AttendanceOutcome,
    AttendanceRecord,
    FeedSource,
    Meeting,
    MeetingStatus,
    MeetingSubscription,
)
from storage.models.messages import (
    Broadcast,
    ConversationState,
    InboundMessage,
    MessageKind,
    OutboundMessage,
    OutboxStatus,
    Priority,
    RateBucket,
)
from storage.models.people import (
    AuditEvent,
    Channel,
    ChannelIdentity,
    IdentityStatus,
    LinkCode,
    Participant,
    ParticipantBase,
    ParticipantCreate,
    ParticipantKey,
    ParticipantPublic,
    ParticipantStatus,
    Prison,
    StaffRole,
    StaffUser,
)
from storage.models.plans import AftercarePlan, Appointment, AppointmentKind, KeyContact
from storage.models.regions import Region
from storage.models.tools import CheckIn, CrisisEvent, ToolEntry, ToolKind

# Registers the listeners that seal each row with its participant's key (after the tables).
from storage.models import sealed as _sealed  # noqa: E402, F401  isort: skip

__all__ = [
    "Access", "AftercarePlan", "Appointment", "AppointmentKind", "Attendance",
    "AttendanceOutcome", "AttendanceRecord", "AuditEvent", "Broadcast", "Channel",
    "ChannelIdentity", "CheckIn", "ConversationState", "CrisisEvent", "FeedSource",
    "IdentityStatus",
    "InboundMessage", "JSONText", "KeyContact", "LinkCode", "Meeting", "MeetingStatus",
    "MeetingSubscription", "MessageKind", "OutboundMessage", "OutboxStatus", "Participant",
    "ParticipantBase", "ParticipantCreate", "ParticipantKey", "ParticipantPublic",
    "ParticipantStatus",
    "Prison", "Priority", "RateBucket", "Region", "StaffRole", "StaffUser", "ToolEntry",
    "ToolKind", "UTCDateTime",
    "utcnow",
]

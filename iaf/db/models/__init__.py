"""All tables; import this package so Alembic and the app see every model."""

from iaf.db.models.agents import AgentRun, KnowledgeChunk, KnowledgeDocument, Memory
from iaf.db.models.base import Base
from iaf.db.models.chat import (
    Message,
    MessageReadReceipt,
    Room,
    RoomEvent,
    RoomMember,
    RoomVectorRemoval,
)
from iaf.db.models.crawl import KnowledgeSource, KnowledgeSourcePage
from iaf.db.models.files import Attachment
from iaf.db.models.gdpr import (
    Consent,
    ConsentChange,
    DataSubjectRequest,
    DataSubjectRequestStep,
    ErasureAudit,
    ErasureTarget,
    ExportDownloadToken,
)
from iaf.db.models.identity import ApiKey, Org, PasswordReset, User
from iaf.db.models.invitations import Invitation, Referral
from iaf.db.models.ledger import LedgerEntry
from iaf.db.models.notifications import (
    Notification,
    NotificationDigest,
    NotificationSetting,
    UserPresence,
)
from iaf.db.models.openai_sessions import OpenAISession
from iaf.db.models.ops import RateLimitCounter
from iaf.db.models.sessions import EmailChange, RevokedToken
from iaf.db.models.user_events import UserEvent

__all__ = [
    "AgentRun",
    "ApiKey",
    "Attachment",
    "Base",
    "Consent",
    "ConsentChange",
    "DataSubjectRequest",
    "DataSubjectRequestStep",
    "EmailChange",
    "ErasureAudit",
    "ErasureTarget",
    "ExportDownloadToken",
    "Invitation",
    "KnowledgeChunk",
    "KnowledgeDocument",
    "KnowledgeSource",
    "KnowledgeSourcePage",
    "LedgerEntry",
    "Memory",
    "Message",
    "MessageReadReceipt",
    "Notification",
    "NotificationDigest",
    "NotificationSetting",
    "OpenAISession",
    "Org",
    "PasswordReset",
    "RateLimitCounter",
    "Referral",
    "RevokedToken",
    "Room",
    "RoomEvent",
    "RoomMember",
    "RoomVectorRemoval",
    "User",
    "UserEvent",
    "UserPresence",
]

"""All tables; import this package so Alembic and the app see every model."""

from iaf.db.models.base import Base
from iaf.db.models.chat import Message, Room, RoomEvent, RoomMember
from iaf.db.models.identity import ApiKey, Org, User
from iaf.db.models.ops import RateLimitCounter

__all__ = [
    "ApiKey",
    "Base",
    "Message",
    "Org",
    "RateLimitCounter",
    "Room",
    "RoomEvent",
    "RoomMember",
    "User",
]

"""Rooms, members and messages over HTTP."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    AliasPath,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from schemas.common import MAX_BIGINT, NameStr, SafeStr

RoomKind = Literal["direct", "group", "project"]
MemberRole = Literal["owner", "admin", "member"]


class RoomCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: NameStr = Field(min_length=1, max_length=200)
    kind: RoomKind = "group"
    topic: SafeStr = Field(default="", max_length=2000)
    # Omitted: on in a project room (agents answer its questions unasked), off otherwise.
    auto_route: bool | None = None
    member_ids: list[uuid.UUID] = Field(default_factory=list, max_length=500)


class RoomUpdate(BaseModel):
    """A partial update: an omitted field is left unchanged; null is not a value of any."""

    model_config = ConfigDict(extra="forbid")

    name: NameStr | None = Field(default=None, min_length=1, max_length=200)
    topic: SafeStr | None = Field(default=None, max_length=2000)
    auto_route: bool | None = None
    archived: bool | None = None

    @field_validator("name", "topic", "auto_route", "archived", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only for fields the client sent (defaults are not validated).
        if value is None:
            raise ValueError("must not be null; omit the field to leave it unchanged")
        return value


class RoomOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    kind: str
    topic: str
    auto_route: bool
    archived: bool
    # Nobody joins it: agents there may use its owner's memories.
    owner_only: bool = False
    created_at: datetime
    my_role: str | None = None
    unread_count: int | None = None
    # Unread messages that mention the caller by name or with @all (RouteMessage records them);
    # always 0 in a room the caller muted.
    unread_mentions: int | None = None
    # The caller muted the room: no mention badge, no notification.
    is_muted: bool = False

    @classmethod
    def of(
        cls,
        room: object,
        role: str,
        unread: int | None = None,
        mentions: int | None = None,
        muted: bool = False,
    ) -> RoomOut:
        """The stored room as one of its members sees it."""
        out = cls.model_validate(room, from_attributes=True)
        return out.model_copy(
            update={
                "my_role": role,
                "unread_count": unread,
                "unread_mentions": mentions,
                "is_muted": muted,
            }
        )


class MembershipUpdate(BaseModel):
    """The caller's own settings in a room."""

    model_config = ConfigDict(extra="forbid")

    is_muted: bool


class MembershipOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    room_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    is_muted: bool
    last_read_message_id: int | None = None


class ReadReceiptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: uuid.UUID
    read_at: datetime


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID
    role: MemberRole = "member"


class MemberRoleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: MemberRole


class MemberOut(BaseModel):
    user_id: uuid.UUID
    name: str
    handle: str
    role: str
    joined_at: datetime
    last_read_message_id: int | None = None


class AttachmentRef(BaseModel):
    """A file posted with a message, as the message carries it; the bytes are at
    GET /api/chat/attachments/{id} for the room's members."""

    id: uuid.UUID
    name: str
    content_type: str
    kind: str
    size_bytes: int
    width: int | None = None
    height: int | None = None


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Length is checked in bytes by the route, which answers 413 with a clear code. May be
    # empty when files are attached.
    content: SafeStr
    # Uploaded first (POST /api/chat/rooms/{id}/attachments), posted here once.
    attachment_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    reply_to_id: int | None = Field(default=None, ge=1, le=MAX_BIGINT)
    client_msg_id: SafeStr | None = Field(default=None, min_length=1, max_length=100)


class MessageEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: SafeStr


class MessageOut(BaseModel):
    """A message as clients see it, built from a stored row (see `of`)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    room_id: uuid.UUID
    sender_user_id: uuid.UUID | None
    sender_agent_id: str | None
    # A person's name (joined from users, not on the row); an agent signs with its id.
    sender_name: str | None = Field(validation_alias=AliasChoices("sender_name", "sender_agent_id"))
    content: str
    type: str
    reply_to_id: int | None
    # Recorded by RouteMessage in the row's metadata.
    mentions: list[dict[str, Any]] = Field(
        default_factory=list,
        validation_alias=AliasChoices("mentions", AliasPath("meta", "mentions")),
    )
    attachments: list[AttachmentRef] = Field(
        default_factory=list,
        validation_alias=AliasChoices("attachments", AliasPath("meta", "attachments")),
    )
    client_msg_id: str | None = None
    # A team answer: {team_id, agents (the panel), answered (those whose answer it uses)}.
    team: dict[str, Any] | None = Field(
        default=None, validation_alias=AliasChoices("team", AliasPath("meta", "team"))
    )
    created_at: datetime
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    # Direct rooms only: when the other person read this message (absent elsewhere).
    read_by: list[ReadReceiptOut] | None = None
    # An agent reply drawn from organisation documents: shown to the organisation's people
    # only (a guest who joins later reads a notice instead; docs/privacy.md).
    org_knowledge: bool = Field(
        default=False,
        validation_alias=AliasChoices("org_knowledge", AliasPath("meta", "org_knowledge")),
    )

    @model_validator(mode="after")
    def _deleted_without_text(self) -> MessageOut:
        if self.deleted_at is not None:
            self.content = ""
        return self

    @classmethod
    def of(cls, message: object, sender_name: str | None = None) -> MessageOut:
        """`sender_name`: the author's name when a person wrote it (joined from users)."""
        out = cls.model_validate(message, from_attributes=True)
        return out.model_copy(update={"sender_name": sender_name}) if sender_name else out


class MemberAdded(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    role: str
    added: bool


class MemberRoleChanged(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    role: str
    previous_role: str
    changed: bool


class ReadMarkerOut(BaseModel):
    room_id: uuid.UUID
    last_read_message_id: int


class ReadMarker(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: int = Field(ge=1, le=MAX_BIGINT)

"""Editing and deleting a message: the row, and every other stored copy of its text.

Deleted means gone, for a message as for an account (docs/privacy.md): the row keeps no
text, its earlier events are rewritten (a client replaying from Last-Event-ID 0 sees the
deletion, not the words), the replies agents wrote to it are withdrawn the same way, and a
reply still being prepared forgets it. An edit does the same for the previous text: the
events carry the new text and the replies to the old one are withdrawn. The author's
export archives holding the old text are withdrawn too. Nothing here commits; the caller
commits the request's one transaction, then cancels the withdrawn replies still running
and removes the withdrawn archives' files (`Change`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Message, User
from iaf.db.repositories.attachments import AttachmentRepository
from iaf.db.repositories.message_copies import MessageCopyRepository
from iaf.db.repositories.messages import MessageRepository
from iaf.db.repositories.room_events import EventRepository
from iaf.db.repositories.stale_archives import StaleArchiveRepository
from iaf.errors import ApiError
from iaf.rooms.service import ensure_writable, room_for_member
from schemas.chat import MessageOut

WITHDRAWN_EDITED = "source_edited"
WITHDRAWN_DELETED = "source_deleted"


@dataclass
class Change:
    message: MessageOut | None = None
    running_replies: list[str] = field(default_factory=list)
    # The author's export archives that held the old text: their files go after the commit.
    stale_archives: list[str] = field(default_factory=list)
    # A deleted message's attachments: their bytes go after the commit.
    withdrawn_files: list[uuid.UUID] = field(default_factory=list)


async def _message_for(session: AsyncSession, message_id: int, user: User) -> tuple[Message, str]:
    found = await MessageRepository(session).get(message_id)
    if found is None:
        raise ApiError(404, "message_not_found", "message not found")
    message = found[0]
    room, role = await room_for_member(session, message.room_id, user)
    ensure_writable(room)
    if message.deleted_at is not None:
        raise ApiError(410, "message_deleted", "the message was deleted")
    return message, role


async def _withdraw_replies(session: AsyncSession, message: Message, reason: str) -> list[str]:
    """Withdraw the replies to `message`; tell clients; the ids of those still running."""
    copies = MessageCopyRepository(session)
    events = EventRepository(session)
    withdrawn = await copies.withdraw_replies(message.room_id, message.id, reason)
    for reply in withdrawn:
        if reply.reply_message_id is not None:
            await events.append(
                message.room_id,
                "message.delete",
                {"id": reply.reply_message_id, "room_id": str(message.room_id)},
            )
    await copies.forget_in_contexts(message.room_id, message.id)
    return [r.reply_id for r in withdrawn if r.status in ("pending", "running")]


async def editable_message(
    session: AsyncSession, message_id: int, user: User, window_minutes: float
) -> Message:
    """The message `user` may edit now, or the 4xx that says why not."""
    message, _ = await _message_for(session, message_id, user)
    if message.sender_user_id != user.id:
        raise ApiError(403, "forbidden", "only the author may edit a message")
    if datetime.now(UTC) - message.created_at > timedelta(minutes=window_minutes):
        raise ApiError(409, "edit_window_closed", "messages can only be edited for a limited time")
    return message


async def edit_message(session: AsyncSession, message: Message, user: User, content: str) -> Change:
    await MessageRepository(session).edit(message, content)
    assert message.edited_at is not None
    await MessageCopyRepository(session).rewrite_events(
        message.room_id, message.id, content, message.edited_at, deleted=False
    )
    running = await _withdraw_replies(session, message, WITHDRAWN_EDITED)
    out = MessageOut.of(message, user.name)
    await EventRepository(session).append(
        message.room_id, "message.edit", out.model_dump(mode="json")
    )
    return Change(out, running, await StaleArchiveRepository(session).withdraw_for(user.id))


async def delete_message(session: AsyncSession, message_id: int, user: User) -> Change:
    message, role = await _message_for(session, message_id, user)
    if message.sender_user_id != user.id and role not in ("owner", "admin"):
        raise ApiError(403, "forbidden", "only the author or a room admin may delete a message")
    # Its files go with it (the janitor deletes their bytes if the request cannot).
    files = await AttachmentRepository(session).withdraw_for_message(message.id)
    await MessageRepository(session).tombstone(message)
    assert message.deleted_at is not None
    await MessageCopyRepository(session).rewrite_events(
        message.room_id, message.id, "", message.deleted_at, deleted=True
    )
    running = await _withdraw_replies(session, message, WITHDRAWN_DELETED)
    await EventRepository(session).append(
        message.room_id, "message.delete", {"id": message.id, "room_id": str(message.room_id)}
    )
    stale = []
    if message.sender_user_id is not None:
        stale = await StaleArchiveRepository(session).withdraw_for(message.sender_user_id)
    return Change(None, running, stale, files)

"""Attachments: uploads, posting them with a message, withdrawing them, the janitor's work."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Attachment


class AttachmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, attachment: Attachment) -> Attachment:
        self.session.add(attachment)
        await self.session.flush()
        await self.session.refresh(attachment)
        return attachment

    async def get(self, attachment_id: uuid.UUID) -> Attachment | None:
        return await self.session.get(Attachment, attachment_id, populate_existing=True)

    async def set_status(self, attachment_id: uuid.UUID, status: str) -> None:
        await self.session.execute(
            update(Attachment).where(Attachment.id == attachment_id).values(status=status)
        )

    async def for_posting(
        self, ids: list[uuid.UUID], uploader_id: uuid.UUID, room_id: uuid.UUID
    ) -> list[Attachment]:
        """The caller's stored uploads to this room among `ids`, locked until the post commits."""
        rows = await self.session.scalars(
            select(Attachment)
            .where(
                Attachment.id.in_(ids),
                Attachment.uploader_id == uploader_id,
                Attachment.room_id == room_id,
                Attachment.status == "stored",
            )
            .with_for_update()
        )
        return list(rows)

    async def attach(self, ids: list[uuid.UUID], message_id: int) -> None:
        await self.session.execute(
            update(Attachment)
            .where(Attachment.id.in_(ids))
            .values(message_id=message_id, posted_at=datetime.now(UTC))
        )

    async def withdraw_for_message(self, message_id: int) -> list[uuid.UUID]:
        """A deleted message takes its files with it: marked for the janitor, and the copies of
        their names left in the message and its events removed. Returns the ids."""
        ids = list(
            await self.session.scalars(
                update(Attachment)
                .where(Attachment.message_id == message_id, Attachment.status != "deleting")
                .values(status="deleting")
                .returning(Attachment.id)
            )
        )
        await self.session.execute(
            text(
                "UPDATE messages SET metadata = metadata - 'attachments'"
                " WHERE id = :id AND metadata ? 'attachments'"
            ),
            {"id": message_id},
        )
        await self.session.execute(
            text(
                "UPDATE room_events SET data = data - 'attachments' WHERE room_id ="
                " (SELECT room_id FROM messages WHERE id = :id)"
                " AND type IN ('message.new', 'message.edit') AND (data ->> 'id')::bigint = :id"
                " AND data ? 'attachments'"
            ),
            {"id": message_id},
        )
        return ids

    async def withdraw_uploaded_by(self, user_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
        """Every file the person uploaded (erasure): rows deleted, names gone from messages and
        events. Returns (id, storage key) for the bytes to delete."""
        rows = (
            await self.session.execute(
                delete(Attachment)
                .where(Attachment.uploader_id == user_id)
                .returning(Attachment.id, Attachment.storage_key, Attachment.message_id)
            )
        ).all()
        message_ids = [int(r[2]) for r in rows if r[2] is not None]
        if message_ids:
            await self.session.execute(
                text(
                    "UPDATE messages SET metadata = metadata - 'attachments'"
                    " WHERE id = ANY(:ids) AND metadata ? 'attachments'"
                ),
                {"ids": message_ids},
            )
            await self.session.execute(
                text(
                    "UPDATE room_events SET data = data - 'attachments'"
                    " WHERE type IN ('message.new', 'message.edit') AND data ? 'attachments'"
                    " AND (data ->> 'id')::bigint = ANY(:ids)"
                ),
                {"ids": message_ids},
            )
        return [(r[0], str(r[1])) for r in rows]

    async def uploaded_by(self, user_id: uuid.UUID) -> list[Attachment]:
        rows = await self.session.scalars(
            select(Attachment)
            .where(Attachment.uploader_id == user_id, Attachment.status == "stored")
            .order_by(Attachment.created_at, Attachment.id)
        )
        return list(rows)

    async def count_uploaded_by(self, user_id: uuid.UUID) -> int:
        rows = await self.session.execute(
            text("SELECT count(*) FROM attachments WHERE uploader_id = :uid"), {"uid": user_id}
        )
        return int(rows.scalar_one())

    async def abandoned(self, unposted_hours: float, limit: int = 200) -> list[Attachment]:
        """What the janitor removes: withdrawn files, files whose room, message or uploader is
        gone, uploads never posted (or never finished) after `unposted_hours`."""
        cutoff = datetime.now(UTC) - timedelta(hours=unposted_hours)
        rows = await self.session.scalars(
            select(Attachment)
            .where(
                or_(
                    Attachment.status == "deleting",
                    Attachment.room_id.is_(None),
                    Attachment.uploader_id.is_(None),
                    Attachment.posted_at.is_not(None) & Attachment.message_id.is_(None),
                    Attachment.posted_at.is_(None) & (Attachment.created_at < cutoff),
                )
            )
            .limit(limit)
        )
        return list(rows)

    async def forget(self, ids: list[uuid.UUID]) -> None:
        await self.session.execute(delete(Attachment).where(Attachment.id.in_(ids)))

    async def export_rows(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self.session.execute(
            text(
                "SELECT jsonb_build_object('id', id, 'name', name, 'content_type', content_type,"
                " 'kind', kind, 'size_bytes', size_bytes, 'sha256', sha256, 'room_id', room_id,"
                " 'message_id', message_id, 'created_at', created_at, 'posted_at', posted_at)"
                " FROM attachments WHERE uploader_id = :uid AND status = 'stored'"
                " ORDER BY created_at, id"
            ),
            {"uid": user_id},
        )
        return [dict(r[0]) for r in rows]

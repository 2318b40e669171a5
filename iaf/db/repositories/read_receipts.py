"""Per-message read receipts of direct rooms: who read which message of the other person, when."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import MessageReadReceipt

# A reader catching up on a long backlog receipts its newest messages; the older ones are
# covered by the read marker (a receipt says when, the marker only says how far).
RECEIPTS_PER_READ = 1000

_RECORD = text(
    "INSERT INTO message_read_receipts (message_id, user_id, room_id)"
    " SELECT id, :reader, :room_id FROM messages"
    " WHERE room_id = :room_id AND id > :after AND id <= :up_to AND deleted_at IS NULL"
    "   AND sender_user_id IS NOT NULL AND sender_user_id <> :reader"
    " ORDER BY id DESC LIMIT :limit"
    " ON CONFLICT DO NOTHING RETURNING message_id, read_at"
)


class ReadReceiptRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self, room_id: uuid.UUID, reader: uuid.UUID, after: int, up_to: int
    ) -> tuple[list[int], datetime | None]:
        """Receipts for the other person's messages in (after, up_to]; the ids newly receipted
        (ascending) and when."""
        rows = (
            await self.session.execute(
                _RECORD,
                {
                    "room_id": room_id,
                    "reader": reader,
                    "after": after,
                    "up_to": up_to,
                    "limit": RECEIPTS_PER_READ,
                },
            )
        ).all()
        if not rows:
            return [], None
        return sorted(int(r[0]) for r in rows), rows[0][1]

    async def for_messages(
        self, room_id: uuid.UUID, message_ids: list[int]
    ) -> dict[int, list[MessageReadReceipt]]:
        found: dict[int, list[MessageReadReceipt]] = {}
        if not message_ids:
            return found
        rows = await self.session.scalars(
            select(MessageReadReceipt)
            .where(
                MessageReadReceipt.room_id == room_id,
                MessageReadReceipt.message_id.in_(message_ids),
            )
            .order_by(MessageReadReceipt.read_at)
        )
        for receipt in rows:
            found.setdefault(receipt.message_id, []).append(receipt)
        return found

"""Queued notifications and the digests that carry them.

Queueing checks, in one statement, everything that decides whether a person is told at all:
an active account, digests not turned off, the room not muted (and still theirs, for room
activity), and no live SSE lease (offline). Sending checks again what may have changed since:
a message read in the app meanwhile, a room muted or left, a message deleted, digests turned
off. Rows carry ids only; the digest's text is composed when it is sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import NotificationDigest

_QUEUE = text(
    "INSERT INTO notifications"
    " (user_id, kind, source_key, room_id, message_id, actor_user_id, actor_agent_id)"
    " SELECT u.id, :kind, :source_key, :room_id, :message_id, :actor_user_id, :actor_agent_id"
    " FROM users u"
    " LEFT JOIN room_members m ON m.room_id = :room_id AND m.user_id = u.id"
    " LEFT JOIN notification_settings s ON s.user_id = u.id"
    " WHERE u.id = ANY(CAST(:users AS uuid[])) AND u.status = 'active'"
    "   AND coalesce(s.email_digest, true)"
    "   AND NOT coalesce(m.is_muted, false)"
    "   AND (m.user_id IS NOT NULL OR NOT :members_only)"
    "   AND NOT EXISTS (SELECT 1 FROM user_presence p"
    "                   WHERE p.user_id = u.id AND p.online_until > now())"
    " ON CONFLICT (user_id, source_key) DO NOTHING"
)

_PENDING_FOR_SOURCE = text(
    "SELECT user_id FROM notifications WHERE source_key = :source_key"
    " AND user_id = ANY(CAST(:users AS uuid[])) AND digest_id IS NULL AND dropped_reason IS NULL"
)

# What may have changed since a notification was queued, checked when its digest is made.
_DROP = text(
    "UPDATE notifications n SET dropped_reason = d.reason FROM ("
    " SELECT q.id, CASE"
    "   WHEN u.status <> 'active' THEN 'inactive'"
    "   WHEN NOT coalesce(s.email_digest, true) THEN 'unsubscribed'"
    "   WHEN q.kind <> 'invitation_accepted' AND m.user_id IS NULL THEN 'left'"
    "   WHEN coalesce(m.is_muted, false) THEN 'muted'"
    "   WHEN msg.deleted_at IS NOT NULL THEN 'deleted'"
    "   WHEN q.message_id <= coalesce(m.last_read_message_id, 0) THEN 'read'"
    " END AS reason"
    " FROM notifications q"
    " JOIN users u ON u.id = q.user_id"
    " LEFT JOIN notification_settings s ON s.user_id = q.user_id"
    " LEFT JOIN room_members m ON m.room_id = q.room_id AND m.user_id = q.user_id"
    " LEFT JOIN messages msg ON msg.id = q.message_id"
    " WHERE q.user_id = :user_id AND q.digest_id IS NULL AND q.dropped_reason IS NULL"
    ") d WHERE n.id = d.id AND d.reason IS NOT NULL"
)

_TAKE = text(
    "UPDATE notifications SET digest_id = :digest_id"
    " WHERE user_id = :user_id AND digest_id IS NULL AND dropped_reason IS NULL"
)

_ITEMS = text(
    "SELECT n.kind, n.room_id, r.name, n.message_id, a.name, n.actor_agent_id, n.created_at"
    " FROM notifications n"
    " LEFT JOIN rooms r ON r.id = n.room_id"
    " LEFT JOIN users a ON a.id = n.actor_user_id"
    " WHERE n.digest_id = :digest_id ORDER BY n.id"
)


@dataclass(frozen=True)
class DigestItem:
    kind: str
    room_id: uuid.UUID | None
    room_name: str | None
    message_id: int | None
    actor_name: str | None
    actor_agent_id: str | None
    created_at: datetime


class NotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def queue(
        self,
        kind: str,
        source_key: str,
        user_ids: Sequence[uuid.UUID],
        *,
        room_id: uuid.UUID | None,
        message_id: int | None = None,
        actor_user_id: uuid.UUID | None = None,
        actor_agent_id: str | None = None,
        members_only: bool = True,
    ) -> list[uuid.UUID]:
        """Queue for those of `user_ids` who should be told; returns everyone with this source
        still waiting for a digest (queued now or by an earlier attempt)."""
        if not user_ids:
            return []
        users = [str(u) for u in dict.fromkeys(user_ids)]
        await self.session.execute(
            _QUEUE,
            {
                "kind": kind,
                "source_key": source_key,
                "room_id": room_id,
                "message_id": message_id,
                "actor_user_id": actor_user_id,
                "actor_agent_id": actor_agent_id,
                "members_only": members_only,
                "users": users,
            },
        )
        rows = await self.session.scalars(
            _PENDING_FOR_SOURCE, {"source_key": source_key, "users": users}
        )
        return list(rows)

    async def pending_count(self, user_id: uuid.UUID) -> int:
        found = await self.session.scalar(
            text(
                "SELECT count(*) FROM notifications WHERE user_id = :user_id"
                " AND digest_id IS NULL AND dropped_reason IS NULL"
            ),
            {"user_id": user_id},
        )
        return int(found or 0)

    async def last_sent_at(self, user_id: uuid.UUID) -> datetime | None:
        found: datetime | None = await self.session.scalar(
            text("SELECT max(sent_at) FROM notification_digests WHERE user_id = :user_id"),
            {"user_id": user_id},
        )
        return found

    async def unsent_digest(self, user_id: uuid.UUID) -> NotificationDigest | None:
        """A digest made by an attempt that did not record its sending (resent as it was)."""
        return await self.session.scalar(
            select(NotificationDigest)
            .where(NotificationDigest.user_id == user_id, NotificationDigest.sent_at.is_(None))
            .order_by(NotificationDigest.created_at)
            .limit(1)
        )

    async def make_digest(self, user_id: uuid.UUID) -> NotificationDigest | None:
        """Drop what no longer needs telling, then gather the rest into a new digest."""
        # One digest at a time per person, whatever runs twice.
        await self.session.execute(
            text("SELECT 1 FROM users WHERE id = :u FOR NO KEY UPDATE"), {"u": user_id}
        )
        await self.session.execute(_DROP, {"user_id": user_id})
        count = await self.pending_count(user_id)
        if count == 0:
            return None
        digest = NotificationDigest(id=uuid.uuid4(), user_id=user_id, item_count=count)
        self.session.add(digest)
        await self.session.flush()
        await self.session.execute(_TAKE, {"digest_id": digest.id, "user_id": user_id})
        return digest

    async def items(self, digest_id: uuid.UUID) -> list[DigestItem]:
        rows = await self.session.execute(_ITEMS, {"digest_id": digest_id})
        return [DigestItem(*row) for row in rows.all()]

    async def mark_sent(self, digest_id: uuid.UUID, sent_at: datetime) -> None:
        await self.session.execute(
            text(
                "UPDATE notification_digests SET sent_at = :at WHERE id = :id AND sent_at IS NULL"
            ),
            {"id": digest_id, "at": sent_at},
        )

"""Rooms, members, messages and the room event log."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, text, type_coerce, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Message, Room, RoomMember, User
from iaf.db.repositories.ratelimit import WindowUsage, hit_ctes
from iaf.schemas.chat import MessageCreate, MessageOut

_INSERT_EVENT = text(
    "INSERT INTO room_events (room_id, type, data) VALUES (:room_id, :type, CAST(:data AS jsonb))"
    " RETURNING id"
)
_NOTIFY = text("SELECT pg_notify('room_events', :payload)")


def _jsonable(data: dict[str, Any]) -> str:
    return json.dumps(data, default=str, separators=(",", ":"))


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def append(self, room_id: uuid.UUID, type_: str, data: dict[str, Any]) -> int:
        """Insert one event; the table's triggers order it and NOTIFY every API replica."""
        result = await self.session.execute(
            _INSERT_EVENT, {"room_id": room_id, "type": type_, "data": _jsonable(data)}
        )
        return int(result.scalar_one())

    async def notify_ephemeral(self, room_id: uuid.UUID, type_: str, data: dict[str, Any]) -> None:
        """Typing and presence: delivered live, never stored, never replayed."""
        payload = {"room_id": str(room_id), "id": None, "type": type_, "data": data}
        await self.session.execute(_NOTIFY, {"payload": _jsonable(payload)})

    async def after(
        self, room_id: uuid.UUID, after_id: int, limit: int = 500
    ) -> list[tuple[int, str, dict[str, Any]]]:
        rows = await self.session.execute(
            text(
                "SELECT id, type, data FROM room_events WHERE room_id = :room_id AND id > :after"
                " ORDER BY id LIMIT :limit"
            ),
            {"room_id": room_id, "after": after_id, "limit": limit},
        )
        return [(int(r[0]), str(r[1]), dict(r[2])) for r in rows.all()]

    async def get(self, event_id: int) -> tuple[int, str, dict[str, Any]] | None:
        row = (
            await self.session.execute(
                text("SELECT id, type, data FROM room_events WHERE id = :id"), {"id": event_id}
            )
        ).first()
        return (int(row[0]), str(row[1]), dict(row[2])) if row else None

    async def latest_id(self, room_id: uuid.UUID) -> int:
        value = await self.session.scalar(
            text("SELECT coalesce(max(id), 0) FROM room_events WHERE room_id = :room_id"),
            {"room_id": room_id},
        )
        return int(value or 0)


class RoomRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        org_id: uuid.UUID,
        creator_id: uuid.UUID,
        name: str,
        kind: str,
        topic: str,
        auto_route: bool,
    ) -> Room:
        room = Room(
            org_id=org_id,
            name=name,
            kind=kind,
            topic=topic,
            auto_route=auto_route,
            created_by=creator_id,
        )
        self.session.add(room)
        await self.session.flush()
        self.session.add(RoomMember(room_id=room.id, user_id=creator_id, role="owner"))
        await self.session.flush()
        return room

    async def get_for_member(
        self, room_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[Room, str] | None:
        """The room and the caller's role, or None when the caller is not a member."""
        row = (
            await self.session.execute(
                select(Room, RoomMember.role)
                .join(RoomMember, RoomMember.room_id == Room.id)
                .where(Room.id == room_id, RoomMember.user_id == user_id)
            )
        ).first()
        return (row[0], str(row[1])) if row else None

    async def list_for_user(
        self, user_id: uuid.UUID, include_archived: bool, kind: str | None = None
    ) -> list[tuple[Room, str, int]]:
        """The caller's rooms; OpenAI-API conversations (kind "api") only when asked for."""
        unread = (
            select(func.count(Message.id))
            .where(
                Message.room_id == Room.id,
                Message.id > func.coalesce(RoomMember.last_read_message_id, 0),
                Message.deleted_at.is_(None),
                func.coalesce(Message.sender_user_id != user_id, True),
            )
            .correlate(Room, RoomMember)
            .scalar_subquery()
        )
        query = (
            select(Room, RoomMember.role, unread)
            .join(RoomMember, RoomMember.room_id == Room.id)
            .where(RoomMember.user_id == user_id)
            .where(Room.kind == kind if kind else Room.kind != "api")
            .order_by(Room.created_at.desc())
        )
        if not include_archived:
            query = query.where(Room.archived_at.is_(None))
        return [(r[0], str(r[1]), int(r[2])) for r in (await self.session.execute(query)).all()]

    async def update(self, room: Room, changes: dict[str, Any]) -> Room:
        for key, value in changes.items():
            setattr(room, key, value)
        await self.session.flush()
        return room

    async def delete(self, room_id: uuid.UUID) -> None:
        await self.session.execute(delete(Room).where(Room.id == room_id))


class MemberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self, room_id: uuid.UUID) -> list[tuple[RoomMember, User]]:
        rows = await self.session.execute(
            select(RoomMember, User)
            .join(User, User.id == RoomMember.user_id)
            .where(RoomMember.room_id == room_id)
            .order_by(RoomMember.joined_at)
        )
        return [(r[0], r[1]) for r in rows.all()]

    async def add(self, room_id: uuid.UUID, user_id: uuid.UUID, role: str) -> bool:
        """True when the user was not a member before (idempotent add)."""
        result = await self.session.execute(
            pg_insert(RoomMember)
            .values(room_id=room_id, user_id=user_id, role=role)
            .on_conflict_do_nothing()
            .returning(RoomMember.user_id)
        )
        return result.first() is not None

    async def lock_room(self, room_id: uuid.UUID) -> Room | None:
        """Serialise the member changes of one room, and read the room fresh under the lock.

        FOR NO KEY UPDATE: posting (whose foreign key takes FOR KEY SHARE) is not held up,
        but two member changes of the same room run one after the other, so "the last
        owner" and "a direct room's two members" are counted on committed data.
        """
        return await self.session.scalar(
            select(Room)
            .where(Room.id == room_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )

    async def role_of(self, room_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
        role = await self.session.scalar(
            select(RoomMember.role).where(
                RoomMember.room_id == room_id, RoomMember.user_id == user_id
            )
        )
        return str(role) if role is not None else None

    async def set_role(self, room_id: uuid.UUID, user_id: uuid.UUID, role: str) -> bool:
        result = await self.session.execute(
            update(RoomMember)
            .where(RoomMember.room_id == room_id, RoomMember.user_id == user_id)
            .values(role=role)
            .returning(RoomMember.user_id)
        )
        return result.first() is not None

    async def count(self, room_id: uuid.UUID) -> int:
        return int(
            await self.session.scalar(select(func.count()).where(RoomMember.room_id == room_id))
            or 0
        )

    async def remove(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        result = await self.session.execute(
            delete(RoomMember)
            .where(RoomMember.room_id == room_id, RoomMember.user_id == user_id)
            .returning(RoomMember.user_id)
        )
        return result.first() is not None

    async def count_owners(self, room_id: uuid.UUID) -> int:
        return int(
            await self.session.scalar(
                select(func.count()).where(
                    RoomMember.room_id == room_id, RoomMember.role == "owner"
                )
            )
            or 0
        )

    async def mark_read(self, room_id: uuid.UUID, user_id: uuid.UUID, message_id: int) -> int:
        """Read markers only move forward; returns the marker now stored."""
        new = func.greatest(func.coalesce(RoomMember.last_read_message_id, 0), message_id)
        result = await self.session.execute(
            update(RoomMember)
            .where(RoomMember.room_id == room_id, RoomMember.user_id == user_id)
            .values(last_read_message_id=new)
            .returning(RoomMember.last_read_message_id)
        )
        return int(result.scalar_one() or 0)


_MESSAGE_COLUMNS = (Message, User.name)


def message_out(message: Message, sender_name: str | None) -> MessageOut:
    return MessageOut(
        id=message.id,
        room_id=message.room_id,
        sender_user_id=message.sender_user_id,
        sender_agent_id=message.sender_agent_id,
        sender_name=sender_name if message.sender_user_id else message.sender_agent_id,
        content="" if message.deleted_at else message.content,
        type=message.type,
        reply_to_id=message.reply_to_id,
        mentions=list((message.meta or {}).get("mentions", [])),
        client_msg_id=message.client_msg_id,
        created_at=message.created_at,
        edited_at=message.edited_at,
        deleted_at=message.deleted_at,
    )


# The hot path in one statement: membership, the rate-limit hit, the reply_to check, the message
# and its message.new event. Every check is also a row condition, so a refused post writes
# nothing but its rate-limit hit (and the caller rolls that back).
_POST_WITH_EVENT = text(
    f"""
    WITH r AS (
        SELECT rooms.auto_route, rooms.archived_at
        FROM rooms JOIN room_members rm ON rm.room_id = rooms.id AND rm.user_id = :sender_user_id
        WHERE rooms.id = :room_id
    ), {hit_ctes(source="FROM r")}, reply AS (
        SELECT CAST(:reply_to_id AS bigint) IS NULL
            OR EXISTS (SELECT 1 FROM messages WHERE id = :reply_to_id AND room_id = :room_id) AS ok
    ), m AS (
        INSERT INTO messages (room_id, sender_user_id, content, type, reply_to_id, metadata,
                              client_msg_id, created_at, routed_at)
        SELECT :room_id, :sender_user_id, :content, 'text', :reply_to_id, '{{}}'::jsonb,
               :client_msg_id, :created_at,
               CASE WHEN r.auto_route OR :has_at THEN NULL ELSE CAST(:created_at AS timestamptz) END
        FROM r, usage, reply
        WHERE r.archived_at IS NULL AND usage.used <= :limit AND reply.ok
        ON CONFLICT (room_id, sender_user_id, client_msg_id) DO NOTHING
        RETURNING id, routed_at IS NULL AS needs_route
    ), e AS (
        INSERT INTO room_events (room_id, type, data)
        SELECT :room_id, 'message.new', CAST(:data AS jsonb) || jsonb_build_object('id', m.id)
        FROM m
    )
    SELECT EXISTS (SELECT 1 FROM r) AS member, (SELECT archived_at IS NOT NULL FROM r) AS archived,
           usage.hits, usage.previous_hits, usage.elapsed, usage.used, usage.window_start,
           (SELECT ok FROM reply) AS reply_ok,
           (SELECT id FROM m) AS id, (SELECT needs_route FROM m) AS needs_route
    FROM (SELECT 1) AS one LEFT JOIN usage ON true
    """
)


@dataclass(frozen=True)
class PostOutcome:
    """What the one-statement post found; `message` is None when nothing was stored."""

    member: bool
    archived: bool
    usage: WindowUsage | None
    reply_ok: bool
    message: MessageOut | None
    created: bool
    needs_route: bool


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def post(
        self,
        room_id: uuid.UUID,
        sender_user_id: uuid.UUID,
        sender_name: str,
        body: MessageCreate,
        limit: int,
        window_seconds: int = 60,
    ) -> PostOutcome:
        """A person's message and its message.new event, with every check, in one statement.

        A repeated client_msg_id returns the message stored the first time and no new event."""
        created_at = datetime.now(UTC)
        out = MessageOut(
            id=0,
            room_id=room_id,
            sender_user_id=sender_user_id,
            sender_agent_id=None,
            sender_name=sender_name,
            content=body.content,
            type="text",
            reply_to_id=body.reply_to_id,
            client_msg_id=body.client_msg_id,
            created_at=created_at,
        )
        row = (
            await self.session.execute(
                _POST_WITH_EVENT,
                {
                    "room_id": room_id,
                    "sender_user_id": sender_user_id,
                    "content": body.content,
                    "reply_to_id": body.reply_to_id,
                    "client_msg_id": body.client_msg_id,
                    "created_at": created_at,
                    "has_at": "@" in body.content,
                    "bucket": f"post:{sender_user_id}",
                    "window": window_seconds,
                    "limit": limit,
                    "data": _jsonable(out.model_dump(mode="json", exclude={"id"})),
                },
            )
        ).one()
        outcome = PostOutcome(
            member=bool(row.member),
            archived=bool(row.archived),
            usage=None
            if row.window_start is None
            else WindowUsage(
                int(row.hits),
                int(row.previous_hits),
                float(row.elapsed),
                float(row.used),
                row.window_start,
            ),
            reply_ok=bool(row.reply_ok),
            message=None,
            created=row.id is not None,
            needs_route=bool(row.needs_route),
        )
        if row.id is not None:
            return replace(outcome, message=out.model_copy(update={"id": int(row.id)}))
        if outcome.member and not outcome.archived and outcome.reply_ok and body.client_msg_id:
            return replace(
                outcome,
                message=await self._by_client_id(room_id, sender_user_id, body.client_msg_id),
            )
        return outcome

    async def _by_client_id(
        self, room_id: uuid.UUID, sender_user_id: uuid.UUID, client_msg_id: str
    ) -> MessageOut | None:
        row = (
            await self.session.execute(
                select(*_MESSAGE_COLUMNS)
                .outerjoin(User, User.id == Message.sender_user_id)
                .where(
                    Message.room_id == room_id,
                    Message.sender_user_id == sender_user_id,
                    Message.client_msg_id == client_msg_id,
                )
            )
        ).first()
        return message_out(row[0], row[1]) if row else None

    async def insert(
        self,
        room_id: uuid.UUID,
        sender_user_id: uuid.UUID | None,
        content: str,
        *,
        sender_agent_id: str | None = None,
        type_: str = "text",
        reply_to_id: int | None = None,
        client_msg_id: str | None = None,
        meta: dict[str, Any] | None = None,
        routed: bool = False,
    ) -> tuple[Message, bool]:
        """Insert, or return the row already stored under the same client_msg_id (created=False)."""
        values: dict[str, Any] = {
            "room_id": room_id,
            "sender_user_id": sender_user_id,
            "sender_agent_id": sender_agent_id,
            "content": content,
            "type": type_,
            "reply_to_id": reply_to_id,
            "client_msg_id": client_msg_id,
            "meta": meta or {},
            "routed_at": func.now() if routed else None,
        }
        statement = pg_insert(Message).values(**values)
        if client_msg_id is not None:
            statement = statement.on_conflict_do_nothing(
                index_elements=["room_id", "sender_user_id", "client_msg_id"]
            )
        statement = statement.returning(Message)  # type: ignore[assignment]
        created = (await self.session.execute(statement)).scalar_one_or_none()
        if created is not None:
            return created, True
        existing = await self.session.scalar(
            select(Message).where(
                Message.room_id == room_id,
                Message.sender_user_id == sender_user_id,
                Message.client_msg_id == client_msg_id,
            )
        )
        assert existing is not None
        return existing, False

    async def get(self, message_id: int) -> tuple[Message, str | None] | None:
        row = (
            await self.session.execute(
                select(*_MESSAGE_COLUMNS)
                .outerjoin(User, User.id == Message.sender_user_id)
                .where(Message.id == message_id)
            )
        ).first()
        return (row[0], row[1]) if row else None

    async def in_room(self, message_id: int, room_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(Message.id).where(Message.id == message_id, Message.room_id == room_id)
        )
        return found is not None

    async def page(
        self, room_id: uuid.UUID, before: int | None, after: int | None, limit: int
    ) -> list[MessageOut]:
        query = (
            select(*_MESSAGE_COLUMNS)
            .outerjoin(User, User.id == Message.sender_user_id)
            .where(Message.room_id == room_id)
        )
        if after is not None:
            query = query.where(Message.id > after).order_by(Message.id.asc())
        if before is not None:
            query = query.where(Message.id < before)
        if after is None:
            query = query.order_by(Message.id.desc())
        rows = (await self.session.execute(query.limit(limit))).all()
        items = [message_out(r[0], r[1]) for r in rows]
        return sorted(items, key=lambda m: m.id)

    async def edit(self, message: Message, content: str) -> None:
        message.content = content
        message.edited_at = datetime.now(UTC)
        await self.session.flush()

    async def tombstone(self, message: Message) -> None:
        message.content = ""
        message.deleted_at = datetime.now(UTC)
        await self.session.flush()

    async def mark_routed(self, message_id: int, meta_update: dict[str, Any]) -> None:
        await self.session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(
                routed_at=func.coalesce(Message.routed_at, func.now()),
                meta=Message.meta.op("||")(type_coerce(meta_update, JSONB)),
            )
        )

    async def routing_keys(self, message_ids: list[int]) -> dict[int, tuple[str, uuid.UUID | None]]:
        """Room and sender of each message: what starting RouteMessage needs besides the id."""
        if not message_ids:
            return {}
        rows = await self.session.execute(
            select(Message.id, Message.room_id, Message.sender_user_id).where(
                Message.id.in_(message_ids)
            )
        )
        return {int(r[0]): (str(r[1]), r[2]) for r in rows.all()}

    async def unrouted_ids(self, min_age_seconds: float, limit: int) -> list[int]:
        rows = await self.session.scalars(
            select(Message.id)
            .where(
                and_(
                    Message.routed_at.is_(None),
                    Message.created_at
                    < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, min_age_seconds),
                )
            )
            .order_by(Message.id)
            .limit(limit)
        )
        return list(rows)

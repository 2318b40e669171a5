"""Messages: the one-statement post of a person's message, agent and API inserts, pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, type_coerce, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Message, User
from iaf.db.repositories.ratelimit import WINDOW_INTERVAL_SQL, WINDOW_START_SQL, WindowUsage
from iaf.db.repositories.room_events import event_json
from schemas.chat import AttachmentRef, MessageCreate, MessageOut

_MESSAGE_COLUMNS = (Message, User.name)


# The hot path in one statement, committed on its own: the poster's account (active, token
# version), membership, the reply_to check, a retried client_msg_id, the rate limit, the
# message and its message.new event. Every check is a row condition, so a refused post writes
# nothing, and a refused post does not count against the limit. (Two identical posts racing
# each other both count: the second finds the first's row only when it inserts.)
_POST_WITH_EVENT = text(
    f"""
    WITH who AS (
        SELECT id, name FROM users
        WHERE id = :sender_user_id AND status = 'active'
          AND (CAST(:token_version AS integer) IS NULL
               OR token_version = CAST(:token_version AS integer))
          AND NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = CAST(:token_id AS varchar))
    ), r AS (
        SELECT rooms.auto_route, rooms.archived_at
        FROM who
        JOIN room_members rm ON rm.user_id = who.id AND rm.room_id = :room_id
        JOIN rooms ON rooms.id = rm.room_id
    ), reply AS (
        SELECT CAST(:reply_to_id AS bigint) IS NULL
            OR EXISTS (SELECT 1 FROM messages WHERE id = :reply_to_id AND room_id = :room_id) AS ok
    ), retried AS (
        SELECT id FROM messages
        WHERE room_id = :room_id AND sender_user_id = :sender_user_id
          AND client_msg_id = CAST(:client_msg_id AS varchar)
    ), win AS (
        SELECT {WINDOW_START_SQL} AS start
    ), counters AS (
        SELECT
            COALESCE((SELECT c.hits FROM rate_limit_counters c
                      WHERE c.bucket = :bucket AND c.window_start = win.start), 0) AS current_hits,
            COALESCE((SELECT c.hits FROM rate_limit_counters c
                      WHERE c.bucket = :bucket
                        AND c.window_start = win.start - {WINDOW_INTERVAL_SQL}), 0)
                AS previous_hits,
            extract(epoch FROM now() - win.start) AS elapsed
        FROM win
    ), weight AS (
        SELECT previous_hits * (1 - elapsed / CAST(:window AS integer)) AS previous FROM counters
    ), hit AS (
        INSERT INTO rate_limit_counters (bucket, window_start, hits)
        SELECT :bucket, win.start, 1 FROM r, reply, win, weight
        WHERE r.archived_at IS NULL AND reply.ok AND NOT EXISTS (SELECT 1 FROM retried)
          AND weight.previous + 1 <= :limit
        ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_counters.hits + 1
        WHERE rate_limit_counters.hits + 1 + (SELECT previous FROM weight) <= :limit
        RETURNING hits
    ), m AS (
        INSERT INTO messages (room_id, sender_user_id, content, type, reply_to_id, metadata,
                              client_msg_id, created_at, routed_at)
        SELECT :room_id, :sender_user_id, :content, 'text', :reply_to_id, CAST(:meta AS jsonb),
               :client_msg_id, :created_at,
               CASE WHEN r.auto_route OR :has_at THEN NULL ELSE CAST(:created_at AS timestamptz) END
        FROM r, hit
        ON CONFLICT (room_id, sender_user_id, client_msg_id) DO NOTHING
        RETURNING id, routed_at IS NULL AS needs_route
    ), e AS (
        INSERT INTO room_events (room_id, type, data)
        SELECT :room_id, 'message.new', CAST(:data AS jsonb)
               || jsonb_build_object('id', m.id, 'sender_name', who.name)
        FROM m, who
    )
    SELECT EXISTS (SELECT 1 FROM who) AS authenticated, (SELECT name FROM who) AS sender_name,
           EXISTS (SELECT 1 FROM r) AS member, (SELECT archived_at IS NOT NULL FROM r) AS archived,
           (SELECT ok FROM reply) AS reply_ok, (SELECT id FROM retried) AS retried_id,
           (SELECT hits FROM hit) AS hits, counters.current_hits, counters.previous_hits,
           counters.elapsed, weight.previous AS previous_weight, win.start AS window_start,
           (SELECT id FROM m) AS id, (SELECT needs_route FROM m) AS needs_route
    FROM win, counters, weight
    """
)


@dataclass(frozen=True)
class PostOutcome:
    """What the one-statement post found; `message` is None when nothing was stored."""

    authenticated: bool
    member: bool
    archived: bool
    usage: WindowUsage
    reply_ok: bool
    message: MessageOut | None
    created: bool
    needs_route: bool


def _post_usage(row: Any) -> WindowUsage:
    """The limiter's view of a post: the count stored in the window, and `used` with this
    post in it when it was accepted or refused by the limit (then over the limit)."""
    refused_by_limit = (
        row.hits is None
        and row.retried_id is None
        and row.member
        and not row.archived
        and row.reply_ok
    )
    stored = int(row.hits) if row.hits is not None else int(row.current_hits)
    return WindowUsage(
        stored,
        int(row.previous_hits),
        float(row.elapsed),
        stored + refused_by_limit + float(row.previous_weight),
        row.window_start,
    )


def _post_params(
    out: MessageOut, token_version: int | None, limit: int, window_seconds: int
) -> dict[str, Any]:
    return {
        "room_id": out.room_id,
        "sender_user_id": out.sender_user_id,
        "token_version": token_version,
        "token_id": None,
        "content": out.content,
        "reply_to_id": out.reply_to_id,
        "client_msg_id": out.client_msg_id,
        "created_at": out.created_at,
        "has_at": "@" in out.content,
        "meta": event_json(
            {"attachments": [a.model_dump(mode="json") for a in out.attachments]}
            if out.attachments
            else {}
        ),
        "bucket": f"post:{out.sender_user_id}",
        "window": window_seconds,
        "limit": limit,
        # The event's data is the message as the API returns it; the database adds the id
        # and the sender's name.
        "data": event_json(out.model_dump(mode="json", exclude={"id", "sender_name"})),
    }


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def post(
        self,
        room_id: uuid.UUID,
        sender_user_id: uuid.UUID,
        body: MessageCreate,
        limit: int,
        *,
        token_version: int | None,
        token_id: str | None = None,
        window_seconds: int = 60,
        attachments: list[AttachmentRef] | None = None,
    ) -> PostOutcome:
        """A person's message and its message.new event, with every check, in one statement.

        `token_version` is the access token's claim, checked against the account here (None:
        the caller already checked the account, e.g. for an API key). A repeated client_msg_id
        returns the message stored the first time, without an event or a rate-limit hit."""
        out = MessageOut(
            id=0,
            room_id=room_id,
            sender_user_id=sender_user_id,
            sender_agent_id=None,
            sender_name=None,
            content=body.content,
            type="text",
            reply_to_id=body.reply_to_id,
            client_msg_id=body.client_msg_id,
            created_at=datetime.now(UTC),
            attachments=attachments or [],
        )
        params = _post_params(out, token_version, limit, window_seconds)
        params["token_id"] = token_id  # a signed-out token (revoked_tokens) posts nothing
        row = (await self.session.execute(_POST_WITH_EVENT, params)).one()
        outcome = PostOutcome(
            authenticated=bool(row.authenticated),
            member=bool(row.member),
            archived=bool(row.archived),
            usage=_post_usage(row),
            reply_ok=bool(row.reply_ok),
            message=None,
            created=row.id is not None,
            needs_route=bool(row.needs_route),
        )
        if row.id is not None:
            stored = out.model_copy(update={"id": int(row.id), "sender_name": row.sender_name})
            return replace(outcome, message=stored)
        # A retry, or an identical post racing this one that stored its message first.
        retried = row.retried_id is not None or row.hits is not None
        if outcome.member and retried and body.client_msg_id:
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
        return MessageOut.of(row[0], row[1]) if row else None

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
        items = [MessageOut.of(r[0], r[1]) for r in rows]
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

"""Every stored copy of one message's text, rewritten when its author edits or deletes it.

A message's text is also in its message.new / message.edit events (what a client replays
from Last-Event-ID 0), in the replies agents wrote to it (they quote it), in those replies'
own events and stream deltas, and in the context of a reply still being prepared. An edit
or a delete rewrites the events and withdraws the replies; nothing else keeps the old text.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class WithdrawnReply:
    reply_id: str
    agent_id: str
    status: str  # the run's status before: a running one is also cancelled
    reply_message_id: int | None


class MessageCopyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _exec(self, sql: str, params: dict[str, Any]) -> int:
        result = await self.session.execute(text(sql), params)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def rewrite_events(
        self, room_id: uuid.UUID, message_id: int, content: str, when: datetime, deleted: bool
    ) -> int:
        """The message's earlier events now say what the row says: the new text, or none."""
        stamp = "deleted_at" if deleted else "edited_at"
        return await self._exec(
            "UPDATE room_events SET data = data || jsonb_build_object('content', CAST(:c AS text),"
            f" '{stamp}', CAST(:when AS text))"
            " WHERE room_id = :room AND type IN ('message.new', 'message.edit')"
            " AND data ->> 'id' = :id",
            {"c": content, "when": when.isoformat(), "room": room_id, "id": str(message_id)},
        )

    async def withdraw_replies(
        self, room_id: uuid.UUID, message_id: int, reason: str
    ) -> list[WithdrawnReply]:
        """Replies to the message (and hand-offs from them): their text goes, as a deleted
        message's does; their stream events go; their run keeps no draft."""
        rows = await self.session.execute(
            text(
                "SELECT reply_id, agent_id, status, reply_message_id FROM agent_runs"
                " WHERE room_id = :room AND (message_id = :id OR root_message_id = :id)"
                " AND coalesce(context ->> 'withdrawn', '') = ''"
            ),
            {"room": room_id, "id": message_id},
        )
        replies = [WithdrawnReply(str(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows.all()]
        if not replies:
            return []
        reply_ids = [r.reply_id for r in replies]
        message_ids = [r.reply_message_id for r in replies if r.reply_message_id is not None]
        params = {"room": room_id, "ids": message_ids, "reason": reason}
        if message_ids:
            await self._exec(
                "UPDATE messages SET content = '', deleted_at = coalesce(deleted_at, now()),"
                " metadata = metadata || jsonb_build_object('withdrawn', CAST(:reason AS text))"
                " WHERE id = ANY(:ids)",
                params,
            )
            await self._exec(
                "UPDATE room_events SET data = data || jsonb_build_object('content', '',"
                " 'deleted_at', CAST(now() AS text))"
                " WHERE room_id = :room AND type IN ('message.new', 'message.edit')"
                " AND data ->> 'id' = ANY(CAST(:text_ids AS text[]))",
                {"room": room_id, "text_ids": [str(i) for i in message_ids]},
            )
        await self.drop_stream_events(reply_ids)
        # Until it is settled a run's context still holds the texts it read: none is kept.
        await self._exec(
            "UPDATE agent_runs SET answer = NULL, updated_at = now(),"
            " context = jsonb_build_object('withdrawn', CAST(:reason AS text))"
            " WHERE reply_id = ANY(:ids)",
            {"ids": reply_ids, "reason": reason},
        )
        return replies

    async def drop_stream_events(self, reply_ids: list[str]) -> int:
        """agent.delta / agent.reset of these replies (their message, if any, has the text)."""
        if not reply_ids:
            return 0
        return await self._exec(
            "DELETE FROM room_events WHERE type IN ('agent.delta', 'agent.reset')"
            " AND data ->> 'reply_id' = ANY(:ids)",
            {"ids": reply_ids},
        )

    async def forget_in_contexts(self, room_id: uuid.UUID, message_id: int) -> int:
        """Replies still being prepared in the room stop carrying the message in their history."""
        return await self._exec(
            "UPDATE agent_runs SET context = jsonb_set(context, '{history}', coalesce(("
            "  SELECT jsonb_agg(h ORDER BY ord) FROM jsonb_array_elements(context -> 'history')"
            "  WITH ORDINALITY AS x(h, ord) WHERE (h ->> 'message_id') IS DISTINCT FROM :id"
            " ), '[]'::jsonb))"
            " WHERE room_id = :room AND status IN ('pending', 'running')"
            " AND context -> 'history' @> jsonb_build_array(jsonb_build_object('message_id',"
            " CAST(:num AS bigint)))",
            {"room": room_id, "id": str(message_id), "num": message_id},
        )

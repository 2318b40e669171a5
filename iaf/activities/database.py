"""Activities that only need PostgreSQL: reading messages by ID, recording what routing found."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from iaf.agents.mentions import parse_mentions, unique_targets
from iaf.agents.registry import get_registry
from iaf.db.repositories.chat import MessageRepository
from iaf.db.repositories.identity import UserRepository
from iaf.schemas.workflows import MessageRef, RecordedMentions


class ChatDatabaseActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    @activity.defn(name="record_mentions")
    async def record_mentions(self, ref: MessageRef) -> RecordedMentions:
        """Parse and store mentions once; a retry recomputes the same result (idempotent)."""
        async with self.sessionmaker() as session:
            messages = MessageRepository(session)
            found = await messages.get(ref.message_id)
            if found is None:
                return RecordedMentions(
                    message_id=ref.message_id, room_id="", agent_ids=[], user_ids=[],
                    mentions_all=False, routable=False,
                )
            message = found[0]
            handles = await UserRepository(session).handles_in_room(message.room_id)
            mentions = parse_mentions(message.content, get_registry().ids(), handles.keys())
            stored = [
                {
                    "kind": m.kind,
                    "id": str(handles[m.id.lower()]) if m.kind == "user" else m.id,
                    "start": m.start,
                    "end": m.end,
                }
                for m in mentions
            ]
            targets = unique_targets(mentions)
            await messages.mark_routed(message.id, {"mentions": stored})
            await session.commit()
        return RecordedMentions(
            message_id=message.id,
            room_id=str(message.room_id),
            agent_ids=[m.id for m in targets if m.kind == "agent"],
            user_ids=[str(handles[m.id.lower()]) for m in targets if m.kind == "user"],
            mentions_all=any(m.kind == "all" for m in targets),
            routable=message.deleted_at is None,
        )

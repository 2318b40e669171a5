"""Chat activities that only need PostgreSQL: recording the mentions of a message and routing it."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from iaf.agents.intent import route_by_keywords
from iaf.agents.mentions import Mention, parse_mentions, unique_targets
from iaf.agents.registry import get_registry
from iaf.agents.team import team_panel
from iaf.db.models import Message, Room
from iaf.db.repositories.members import MemberRepository
from iaf.db.repositories.messages import MessageRepository
from iaf.db.repositories.room_events import EventRepository
from iaf.db.repositories.users import UserRepository
from iaf.settings import Settings
from schemas.workflows import MessageRef, RecordedMentions


class ChatDbActivities:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings | None = None
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings or Settings()

    @activity.defn(name="record_mentions")
    async def record_mentions(self, ref: MessageRef) -> RecordedMentions:
        """Parse and store mentions, notify mentioned people once, and route by intent.

        Idempotent: the mentions are stored in the message's metadata together with the
        `mention` events, so a retry finds them recorded and sends no second notification.
        """
        async with self.sessionmaker() as session:
            messages = MessageRepository(session)
            found = await messages.get(ref.message_id)
            if found is None:
                return RecordedMentions(
                    message_id=ref.message_id,
                    room_id="",
                    agent_ids=[],
                    user_ids=[],
                    mentions_all=False,
                    routable=False,
                )
            message = found[0]
            handles = await UserRepository(session).handles_in_room(message.room_id)
            registry = get_registry()
            mentions = parse_mentions(message.content, registry.names(), handles.keys())
            panel = team_panel(
                message.content,
                mentions,
                self.settings.team_default_agents,
                registry.ids(),
                self.settings.team_max_agents,
            )
            targets = unique_targets(mentions)
            user_ids = [str(handles[m.id.lower()]) for m in targets if m.kind == "user"]
            mentions_all = any(m.kind == "all" for m in targets)
            if "mentions" not in (message.meta or {}):
                await messages.mark_routed(message.id, {"mentions": _stored(mentions, handles)})
                await self._notify(session, message, user_ids, mentions_all)
            room = await session.get(Room, message.room_id)
            await session.commit()
        agent_ids = [m.id for m in targets if m.kind == "agent"]
        recorded = RecordedMentions(
            message_id=message.id,
            room_id=str(message.room_id),
            agent_ids=agent_ids,
            user_ids=user_ids,
            mentions_all=mentions_all,
            routable=message.deleted_at is None,
            sender_user_id=str(message.sender_user_id) if message.sender_user_id else None,
            auto_route=bool(room and room.auto_route),
            team_agent_ids=panel or [],
        )
        if recorded.auto_route and not agent_ids and recorded.routable:
            intent = route_by_keywords(message.content, get_registry())
            recorded.intent_agent_id = intent.agent_id
            recorded.intent_ambiguous = intent.ambiguous
            recorded.intent_candidates = list(intent.candidates)
        return recorded

    async def _notify(
        self, session: AsyncSession, message: Message, user_ids: list[str], mentions_all: bool
    ) -> None:
        """One `mention` event per person mentioned (everyone but the author for @all)."""
        notified = list(user_ids)
        if mentions_all:
            members = await MemberRepository(session).list(message.room_id)
            notified += [str(user.id) for _, user in members]
        author = str(message.sender_user_id) if message.sender_user_id else None
        events = EventRepository(session)
        for user_id in dict.fromkeys(notified):
            if user_id != author:
                await events.append(
                    message.room_id, "mention", {"message_id": message.id, "user_id": user_id}
                )


def _stored(mentions: list[Mention], handles: dict[str, uuid.UUID]) -> list[dict[str, object]]:
    return [
        {
            "kind": m.kind,
            "id": str(handles[m.id.lower()]) if m.kind == "user" else m.id,
            "start": m.start,
            "end": m.end,
        }
        for m in mentions
    ]

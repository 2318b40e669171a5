"""Notification activities that need PostgreSQL and Temporal: queueing, and the digest's clock.

`notify` reads who should hear of something from PostgreSQL by its id (a message's
mentions, the person a reply answered, the inviter of an accepted invitation), queues a
notification for those who are offline and want e-mails, then wakes each one's digest
workflow (signal-with-start). It is idempotent: a row per (person, thing), and a retry
signals everyone whose notification is still waiting.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client

from iaf.db.models import Invitation
from iaf.db.repositories.agents import AgentRunRepository
from iaf.db.repositories.members import MemberRepository
from iaf.db.repositories.messages import MessageRepository
from iaf.db.repositories.notifications import NotificationRepository
from iaf.settings import Settings
from iaf.workflow_calls import signal_digest
from schemas.notifications import DigestCheck, DigestDue, NotifyRequest, NotifyResult


class NotificationActivities:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], temporal: Client, settings: Settings
    ) -> None:
        self.sessionmaker = sessionmaker
        self.temporal = temporal
        self.settings = settings

    @activity.defn(name="notify")
    async def notify(self, request: NotifyRequest) -> NotifyResult:
        if not self.settings.notification_emails:
            return NotifyResult()
        async with self.sessionmaker() as session:
            waiting = await self._queue(session, request)
            await session.commit()
        for user_id in waiting:
            await signal_digest(self.temporal, self.settings, user_id)
        return NotifyResult(queued=len(waiting))

    async def _queue(self, session: AsyncSession, request: NotifyRequest) -> list[uuid.UUID]:
        notifications = NotificationRepository(session)
        if request.kind == "mention" and request.message_id is not None:
            found = await MessageRepository(session).get(request.message_id)
            if found is None or found[0].deleted_at is not None:
                return []
            message = found[0]
            mentions = (message.meta or {}).get("mentions") or []
            people = [uuid.UUID(m["id"]) for m in mentions if m.get("kind") == "user"]
            if any(m.get("kind") == "all" for m in mentions):
                people += [
                    user.id for _, user in await MemberRepository(session).list(message.room_id)
                ]
            people = [p for p in dict.fromkeys(people) if p != message.sender_user_id]
            return await notifications.queue(
                "mention",
                f"mention:{message.id}",
                people,
                room_id=message.room_id,
                message_id=message.id,
                actor_user_id=message.sender_user_id,
                actor_agent_id=message.sender_agent_id,
            )
        if request.kind == "reply" and request.reply_id is not None:
            run = await AgentRunRepository(session).get(request.reply_id)
            if run is None or run.reply_message_id is None or run.requested_by is None:
                return []
            return await notifications.queue(
                "reply",
                f"reply:{run.reply_id}",
                [run.requested_by],
                room_id=run.room_id,
                message_id=run.reply_message_id,
                actor_agent_id=run.agent_id,
            )
        if request.kind == "invitation_accepted" and request.invitation_id is not None:
            invitation = await session.get(Invitation, request.invitation_id)
            if invitation is None or invitation.status != "accepted":
                return []
            return await notifications.queue(
                "invitation_accepted",
                f"invitation:{invitation.id}",
                [invitation.invited_by],
                room_id=invitation.room_id,
                actor_user_id=invitation.accepted_user_id,
                members_only=False,
            )
        return []

    @activity.defn(name="digest_due")
    async def digest_due(self, check: DigestCheck) -> DigestDue:
        async with self.sessionmaker() as session:
            notifications = NotificationRepository(session)
            return DigestDue(
                pending=await notifications.pending_count(check.user_id),
                last_sent_at=await notifications.last_sent_at(check.user_id),
            )

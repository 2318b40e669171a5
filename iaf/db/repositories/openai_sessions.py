"""Conversations of the OpenAI-compatible API: which room continues which conversation, and
what a finished reply left behind (read from agent_runs and messages, never written here)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import AgentRun, Message, OpenAISession


def conversation_seed(user_id: uuid.UUID, agent_id: str) -> str:
    return hashlib.sha256(f"iaf-openai\x00{user_id}\x00{agent_id}".encode()).hexdigest()


def extend_digest(digest: str, role: str, content: str) -> str:
    """One more turn. Assistant text is compared stripped, as stored replies are."""
    text = content.strip() if role == "assistant" else content
    return hashlib.sha256(f"{digest}\x00{role}\x00{text}".encode()).hexdigest()


def conversation_digests(
    user_id: uuid.UUID, agent_id: str, turns: Sequence[tuple[str, str]]
) -> list[str]:
    """Digest of every prefix of a conversation: `result[k]` covers `turns[:k + 1]`.

    Chained and seeded with the user and the agent, so a digest only ever matches the same
    person talking to the same agent with exactly the same (role, text) turns.
    """
    digest = conversation_seed(user_id, agent_id)
    digests = []
    for role, content in turns:
        digest = extend_digest(digest, role, content)
        digests.append(digest)
    return digests


@dataclass(frozen=True)
class ReplyOutcome:
    status: str
    reply_message_id: int | None
    content: str | None
    usage: dict[str, Any]
    error: dict[str, Any] | None


class OpenAISessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def longest_continuation(
        self, user_id: uuid.UUID, agent_id: str, prefix_digests: Sequence[str]
    ) -> tuple[OpenAISession, int] | None:
        """The conversation whose stored turns are the longest prefix of the request, and
        how many of the request's turns it already holds."""
        if not prefix_digests:
            return None
        rows = await self.session.scalars(
            select(OpenAISession).where(
                OpenAISession.user_id == user_id,
                OpenAISession.agent_id == agent_id,
                OpenAISession.tip_hash.in_(list(prefix_digests)),
            )
        )
        position = {digest: i for i, digest in enumerate(prefix_digests)}
        best = max(rows, key=lambda s: position[s.tip_hash], default=None)
        return None if best is None else (best, position[best.tip_hash] + 1)

    async def claim(self, session_id: uuid.UUID, expected_tip: str, new_tip: str) -> bool:
        """Move the tip forward only if nobody else did: of two requests continuing the same
        conversation at once, one continues it and the other starts a new room."""
        result = await self.session.execute(
            update(OpenAISession)
            .where(OpenAISession.id == session_id, OpenAISession.tip_hash == expected_tip)
            .values(tip_hash=new_tip, updated_at=func.now())
            .returning(OpenAISession.id)
        )
        return result.first() is not None

    async def create(
        self, user_id: uuid.UUID, agent_id: str, room_id: uuid.UUID, tip: str
    ) -> OpenAISession:
        row = OpenAISession(user_id=user_id, agent_id=agent_id, room_id=room_id, tip_hash=tip)
        self.session.add(row)
        await self.session.flush()
        return row

    async def record_reply(self, session_id: uuid.UUID, reply_id: str) -> None:
        await self.session.execute(
            update(OpenAISession)
            .where(OpenAISession.id == session_id)
            .values(last_reply_id=reply_id, updated_at=func.now())
        )

    async def advance_after_reply(
        self, session_id: uuid.UUID, expected_tip: str, new_tip: str
    ) -> bool:
        """Once the reply is stored, the conversation including it is what a follow-up sends."""
        return await self.claim(session_id, expected_tip, new_tip)

    async def reply_outcome(self, reply_id: str) -> ReplyOutcome | None:
        row = (
            await self.session.execute(
                select(
                    AgentRun.status,
                    AgentRun.reply_message_id,
                    Message.content,
                    AgentRun.usage,
                    AgentRun.error,
                )
                .outerjoin(Message, Message.id == AgentRun.reply_message_id)
                .where(AgentRun.reply_id == reply_id)
            )
        ).first()
        if row is None:
            return None
        return ReplyOutcome(
            status=str(row[0]),
            reply_message_id=row[1],
            content=row[2],
            usage=dict(row[3] or {}),
            error=dict(row[4]) if row[4] else None,
        )

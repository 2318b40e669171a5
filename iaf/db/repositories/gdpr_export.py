"""Everything about one subject, one small query per domain (Art. 15 access, Art. 20 portability).

Tables owned by other features are read generically (`to_jsonb(row)` minus secrets) and only
when they exist, so an instance without that feature still exports the rest.
Other people's messages are not copied (Art. 20(4)): only where the subject is mentioned.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Never exported: credentials and vectors.
_SECRET_KEYS = ("token_hash", "token_salt", "password_hash", "key_hash", "embedding", "vector")


async def table_exists(session: AsyncSession, table: str) -> bool:
    return bool(
        await session.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"public.{table}"})
    )


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _SECRET_KEYS}


class ExportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _records(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = await self.session.execute(text(sql), params)
        return [_clean(dict(r[0])) for r in rows.all()]

    async def subject(self, user_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self.session.scalar(
            text(
                "SELECT jsonb_build_object('id', u.id, 'email', u.email, 'name', u.name,"
                " 'handle', u.handle,"
                " 'role', u.role, 'status', u.status, 'created_at', u.created_at,"
                " 'org', jsonb_build_object('id', o.id, 'name', o.name))"
                " FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.id = :uid"
            ),
            {"uid": user_id},
        )
        return dict(row) if row is not None else None

    async def rooms(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        return await self._records(
            "SELECT jsonb_build_object('room_id', r.id, 'org_id', r.org_id, 'name', r.name,"
            " 'kind', r.kind,"
            " 'topic', r.topic, 'role', m.role, 'joined_at', m.joined_at, 'created_by_you',"
            " r.created_by = :uid)"
            " FROM room_members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = :uid ORDER"
            " BY m.joined_at",
            {"uid": user_id},
        )

    async def messages(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        return await self._records(
            "SELECT jsonb_build_object('id', id, 'room_id', room_id, 'type', type, 'content',"
            " content,"
            " 'reply_to_id', reply_to_id, 'created_at', created_at, 'edited_at', edited_at,"
            " 'deleted_at', deleted_at) FROM messages WHERE sender_user_id = :uid ORDER BY id",
            {"uid": user_id},
        )

    async def messages_version(self, user_id: uuid.UUID) -> str:
        """Changes whenever one of the subject's messages is edited or deleted: an archive
        written meanwhile may hold the old text and is written again."""
        value = await self.session.scalar(
            text(
                "SELECT md5(coalesce(string_agg(id || ':' || coalesce(edited_at::text, '') || ':'"
                " || coalesce(deleted_at::text, ''), ',' ORDER BY id), ''))"
                " FROM messages WHERE sender_user_id = :uid"
            ),
            {"uid": user_id},
        )
        return str(value)

    async def mentions_of_you(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        """Where others mentioned the subject: references only, not their text."""
        return await self._records(
            "SELECT jsonb_build_object('message_id', id, 'room_id', room_id, 'created_at',"
            " created_at)"
            " FROM messages WHERE metadata -> 'mentions' @>"
            " jsonb_build_array(jsonb_build_object('id', CAST(:uid_text AS text)))"
            " AND sender_user_id IS DISTINCT FROM :uid ORDER BY id",
            {"uid": user_id, "uid_text": str(user_id)},
        )

    async def invitations_sent(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        return await self._records(
            "SELECT to_jsonb(i) - 'accepted_user_id' - 'token_salt' FROM invitations i"
            " WHERE i.invited_by = :uid ORDER BY i.created_at",
            {"uid": user_id},
        )

    async def invitations_received(self, user_id: uuid.UUID, email: str) -> list[dict[str, Any]]:
        return await self._records(
            "SELECT to_jsonb(i) - 'invited_by' - 'token_salt' FROM invitations i"
            " WHERE lower(i.email) = lower(:email) OR i.accepted_user_id = :uid ORDER BY"
            " i.created_at",
            {"uid": user_id, "email": email},
        )

    async def ledger_entries(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        """The subject's entries; a referral reward's note of whom they referred is that
        person's id, not the subject's to take (as in referrals)."""
        return await self._records(
            "SELECT (to_jsonb(l) - 'user_id')"
            " || jsonb_build_object('meta', l.meta - 'referred_user_id')"
            " FROM ledger_entries l WHERE l.user_id = :uid ORDER BY l.id",
            {"uid": user_id},
        )

    async def ledger_balance(self, user_id: uuid.UUID) -> int:
        value = await self.session.scalar(
            text("SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE user_id = :uid"),
            {"uid": user_id},
        )
        return int(value or 0)

    async def consents(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        return await self._records(
            "SELECT jsonb_build_object('purpose', purpose, 'granted', granted, 'updated_at',"
            " updated_at)"
            " FROM consents WHERE user_id = :uid ORDER BY purpose",
            {"uid": user_id},
        )

    async def consent_history(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        return await self._records(
            "SELECT jsonb_build_object('purpose', purpose, 'granted', granted, 'changed_at',"
            " changed_at)"
            " FROM consent_history WHERE user_id = :uid ORDER BY id",
            {"uid": user_id},
        )

    async def referrals(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        """The subject's side of each referral; the other person's id is not theirs to take."""
        return await self._records(
            "SELECT (to_jsonb(r) - 'referrer_id' - 'referred_user_id') ||"
            " jsonb_build_object('role',"
            " CASE WHEN r.referrer_id = :uid THEN 'referrer' ELSE 'referred' END)"
            " FROM referrals r WHERE r.referrer_id = :uid OR r.referred_user_id = :uid ORDER BY"
            " r.created_at",
            {"uid": user_id},
        )

    async def knowledge_documents(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        return await self._records(
            "SELECT to_jsonb(k) FROM knowledge_documents k WHERE k.owner_id = :uid ORDER BY k.id",
            {"uid": user_id},
        )

    async def attachments(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        """Files the subject posted or uploaded (the bytes go in the archive's attachments/)."""
        return await self._records(
            "SELECT jsonb_build_object('id', id, 'name', name, 'content_type', content_type,"
            " 'kind', kind, 'size_bytes', size_bytes, 'sha256', sha256, 'room_id', room_id,"
            " 'message_id', message_id, 'created_at', created_at, 'posted_at', posted_at,"
            " 'file', 'attachments/' || id || '/' || name)"
            " FROM attachments WHERE uploader_id = :uid AND status = 'stored'"
            " ORDER BY created_at, id",
            {"uid": user_id},
        )

    async def memories(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        return await self._records(
            "SELECT to_jsonb(m) FROM memories m WHERE m.user_id = :uid ORDER BY m.id",
            {"uid": user_id},
        )

    async def agent_runs(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        """Without `context`: the room history the agent read holds other people's messages."""
        return await self._records(
            "SELECT to_jsonb(a) - 'context' FROM agent_runs a WHERE a.requested_by = :uid"
            " ORDER BY a.created_at",
            {"uid": user_id},
        )

    async def requests(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        return await self._records(
            "SELECT jsonb_build_object('id', id, 'kind', kind, 'status', status, 'requested_via',"
            " requested_via,"
            " 'created_at', created_at, 'due_at', due_at, 'completed_at', completed_at)"
            " FROM data_subject_requests WHERE subject_user_id = :uid ORDER BY created_at",
            {"uid": user_id},
        )

    async def api_keys(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        return await self._records(
            "SELECT jsonb_build_object('id', id, 'name', name, 'prefix', prefix, 'created_at',"
            " created_at,"
            " 'last_used_at', last_used_at, 'revoked_at', revoked_at)"
            " FROM api_keys WHERE user_id = :uid ORDER BY created_at",
            {"uid": user_id},
        )

    async def sections(
        self, user_id: uuid.UUID, email: str
    ) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
        """Every section, and the names of those whose feature (table) is not installed."""
        readers: dict[str, tuple[str, Callable[[], Awaitable[list[dict[str, Any]]]]]] = {
            "rooms": ("room_members", lambda: self.rooms(user_id)),
            "messages": ("messages", lambda: self.messages(user_id)),
            "mentions_of_you": ("messages", lambda: self.mentions_of_you(user_id)),
            "invitations_sent": ("invitations", lambda: self.invitations_sent(user_id)),
            "invitations_received": (
                "invitations",
                lambda: self.invitations_received(user_id, email),
            ),
            "ledger_entries": ("ledger_entries", lambda: self.ledger_entries(user_id)),
            "consents": ("consents", lambda: self.consents(user_id)),
            "consent_history": ("consent_history", lambda: self.consent_history(user_id)),
            "referrals": ("referrals", lambda: self.referrals(user_id)),
            "knowledge_documents": (
                "knowledge_documents",
                lambda: self.knowledge_documents(user_id),
            ),
            "memories": ("memories", lambda: self.memories(user_id)),
            "attachments": ("attachments", lambda: self.attachments(user_id)),
            "agent_runs": ("agent_runs", lambda: self.agent_runs(user_id)),
            "requests": ("data_subject_requests", lambda: self.requests(user_id)),
            "api_keys": ("api_keys", lambda: self.api_keys(user_id)),
        }
        sections: dict[str, list[dict[str, Any]]] = {}
        unavailable: list[str] = []
        for name, (table, read) in readers.items():
            if await table_exists(self.session, table):
                sections[name] = await read()
            else:
                sections[name] = []
                unavailable.append(name)
        return sections, unavailable

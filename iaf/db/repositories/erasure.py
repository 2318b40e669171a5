"""Erasure in PostgreSQL: set-based statements, one small function per domain.

Every function is idempotent: it acts on what is still there, so a retried step does no harm.
Tables owned by other features are touched only when they exist.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.erasure_patterns import (
    ERASED,
    REPLY_TOMBSTONE,
    TOMBSTONE,
    email_regex,
    handle_regex,
    quoted_identifier,
    word_regex,
)
from iaf.db.repositories.erasure_targets import Targets
from iaf.db.repositories.gdpr_export import table_exists
from iaf.db.repositories.text_copies import CopyRedactor
from iaf.privacy.names import is_distinctive


class ErasureRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _exec(self, sql: str, params: dict[str, Any]) -> int:
        result = await self.session.execute(text(sql), params)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def _ids(self, sql: str, params: dict[str, Any]) -> list[str]:
        return [str(r[0]) for r in (await self.session.execute(text(sql), params)).all()]

    # --- freeze ------------------------------------------------------------------------

    async def freeze_account(self, user_id: uuid.UUID) -> int:
        """Block login (status) and revoke every token already issued (version bump)."""
        return await self._exec(
            "UPDATE users SET status = 'frozen', token_version = token_version + 1"
            " WHERE id = :uid AND status = 'active'",
            {"uid": user_id},
        )

    async def revoke_api_keys(self, user_id: uuid.UUID) -> int:
        return await self._exec(
            "UPDATE api_keys SET revoked_at = now() WHERE user_id = :uid AND revoked_at IS NULL",
            {"uid": user_id},
        )

    async def cancel_invitations(self, user_id: uuid.UUID) -> int:
        if not await table_exists(self.session, "invitations"):
            return 0
        return await self._exec(
            "UPDATE invitations SET status = 'revoked', closed_at = now(), token_salt = NULL"
            " WHERE invited_by = :uid AND status = 'pending'",
            {"uid": user_id},
        )

    async def cancel_referrals(self, user_id: uuid.UUID) -> int:
        if not await table_exists(self.session, "referrals"):
            return 0
        return await self._exec(
            "UPDATE referrals SET status = 'expired', decided_at = now()"
            " WHERE (referrer_id = :uid OR referred_user_id = :uid) AND status = 'pending'",
            {"uid": user_id},
        )

    async def cancel_exports(self, user_id: uuid.UUID) -> int:
        return await self._exec(
            "UPDATE data_subject_requests SET status = 'cancelled', completed_at = now(),"
            " updated_at = now()"
            " WHERE kind = 'export' AND subject_user_id = :uid"
            " AND status IN ('pending', 'in_grace', 'in_progress', 'error')",
            {"uid": user_id},
        )

    async def related_workflow_ids(self, user_id: uuid.UUID) -> list[str]:
        """Workflows acting for the subject that may run without the SubjectRef attribute."""
        ids = await self._ids(
            "SELECT 'export-' || id FROM data_subject_requests WHERE kind = 'export' AND"
            " subject_user_id = :uid",
            {"uid": user_id},
        )
        if await table_exists(self.session, "invitations"):
            ids += await self._ids(
                "SELECT 'invitation-' || id FROM invitations WHERE invited_by = :uid",
                {"uid": user_id},
            )
        if await table_exists(self.session, "referrals"):
            ids += await self._ids(
                "SELECT 'referral-' || id FROM referrals WHERE referrer_id = :uid OR"
                " referred_user_id = :uid",
                {"uid": user_id},
            )
        if await table_exists(self.session, "agent_runs"):
            ids += await self._ids(
                "SELECT 'reply-' || message_id || '-' || agent_id FROM agent_runs"
                " WHERE requested_by = :uid AND status NOT IN ('done', 'error', 'cancelled',"
                " 'failed')",
                {"uid": user_id},
            )
        return ids

    # --- anonymise shared content --------------------------------------------------------

    async def anonymise_messages(self, user_id: uuid.UUID, tombstone: bool) -> int:
        """Messages others saw lose their author; their text becomes a tombstone unless kept."""
        return await self._exec(
            "UPDATE messages SET sender_user_id = NULL, client_msg_id = NULL,"
            " content = CASE WHEN :tombstone AND deleted_at IS NULL THEN :tomb ELSE content END,"
            " metadata = metadata || '{\"author_erased\": true}'::jsonb"
            " WHERE sender_user_id = :uid",
            {"uid": user_id, "tombstone": tombstone, "tomb": TOMBSTONE},
        )

    async def anonymise_message_events(
        self, user_id: uuid.UUID, tombstone: bool, room_ids: list[uuid.UUID]
    ) -> int:
        """The copies clients replay: message.new/edit events carry content and sender_name.
        Only the rooms the subject posted in can hold them (and room_id is indexed)."""
        return await self._exec(
            "UPDATE room_events SET data = data"
            " || jsonb_build_object('sender_user_id', NULL, 'sender_name', NULL, 'client_msg_id',"
            " NULL)"
            " || CASE WHEN :tombstone AND data ? 'content'"
            "    THEN jsonb_build_object('content', CAST(:tomb AS text)) ELSE '{}'::jsonb END"
            " WHERE room_id = ANY(:rooms) AND type IN ('message.new', 'message.edit')"
            " AND data ->> 'sender_user_id' = :uid",
            {"uid": str(user_id), "tombstone": tombstone, "tomb": TOMBSTONE, "rooms": room_ids},
        )

    async def unmention(self, user_id: uuid.UUID, room_ids: list[uuid.UUID]) -> int:
        """messages.metadata mentions keep their position but lose the subject's id (mentions
        resolve room members, so only the subject's rooms; the generic scrub catches the rest)."""
        return await self._exec(
            "UPDATE messages SET metadata = jsonb_set(metadata, '{mentions}', ("
            '  SELECT jsonb_agg(CASE WHEN m ->> \'id\' = :uid THEN m || \'{"id": null, "erased":'
            " true}'::jsonb"
            "  ELSE m END ORDER BY ord) FROM jsonb_array_elements(metadata -> 'mentions') WITH"
            " ORDINALITY AS x(m, ord)))"
            " WHERE room_id = ANY(:rooms) AND metadata -> 'mentions' @> jsonb_build_array("
            "jsonb_build_object('id', CAST(:uid AS text)))",
            {"uid": str(user_id), "rooms": room_ids},
        )

    async def forget_invitations_received(self, email: str) -> int:
        """Invitations others sent to the subject stay theirs, without the subject's address."""
        if not await table_exists(self.session, "invitations"):
            return 0
        return await self._exec(
            "UPDATE invitations SET email = 'erased-' || id || '@invalid', token_salt = NULL,"
            " status = CASE WHEN status = 'pending' THEN 'revoked' ELSE status END,"
            " closed_at = coalesce(closed_at, now()) WHERE lower(email) = lower(:email)",
            {"email": email},
        )

    async def forget_agent_runs(self, user_id: uuid.UUID) -> int:
        """Runs the subject triggered keep their bookkeeping, not the context or draft text."""
        if not await table_exists(self.session, "agent_runs"):
            return 0
        return await self._exec(
            "UPDATE agent_runs SET context = NULL, answer = NULL"
            " WHERE requested_by = :uid AND (context IS NOT NULL OR answer IS NOT NULL)",
            {"uid": user_id},
        )

    async def withdraw_replies_for(self, user_id: uuid.UUID) -> int:
        """Replies agents wrote for the subject (asked by them, and hand-offs from those)
        go with the subject's messages: they answer, quote and paraphrase them. The reply
        rows stay (threads keep their shape) with a tombstone; their events say the same and
        their stream events go."""
        if not await table_exists(self.session, "agent_runs"):
            return 0
        params = {"uid": user_id, "tomb": REPLY_TOMBSTONE}
        runs = (
            "SELECT reply_id, reply_message_id, room_id FROM agent_runs WHERE requested_by = :uid"
        )
        changed = await self._exec(
            "UPDATE messages SET content = :tomb,"
            ' metadata = metadata || \'{"withdrawn": "requester_erased"}\'::jsonb'
            f" WHERE id IN (SELECT reply_message_id FROM ({runs}) r) AND content <> :tomb",
            params,
        )
        await self._exec(
            "UPDATE room_events e SET data = e.data || jsonb_build_object('content',"
            " CAST(:tomb AS text)) FROM ("
            + runs
            + ") r WHERE e.room_id = r.room_id AND e.type IN ('message.new', 'message.edit')"
            " AND e.data ->> 'id' = CAST(r.reply_message_id AS text)"
            " AND e.data ->> 'content' IS DISTINCT FROM :tomb",
            params,
        )
        await self._exec(
            "DELETE FROM room_events WHERE type IN ('agent.delta', 'agent.reset')"
            f" AND data ->> 'reply_id' IN (SELECT reply_id FROM ({runs}) r)",
            params,
        )
        return changed

    def _exact_redactions(self, targets: Targets) -> list[tuple[str, str]]:
        """Identifiers: replaced in every room the subject was in, whatever its organisation."""
        return [(email_regex(targets.email), ERASED), (handle_regex(targets.handle), "@erased")]

    async def compact_agent_streams(self, room_ids: list[uuid.UUID]) -> int:
        """A streamed reply is split across agent.delta events, so a name or address can span
        two of them, out of reach of any per-row redaction or scan. Once a reply is over
        (agent.done / agent.error, or its run is finished) its text lives in the reply message
        and its message.new event: the deltas (and resets) of the subject's rooms go."""
        if not room_ids:
            return 0
        finished_runs = (
            " UNION SELECT room_id, reply_id FROM agent_runs WHERE room_id = ANY(:rooms)"
            " AND status IN ('done', 'error', 'cancelled')"
            if await table_exists(self.session, "agent_runs")
            else ""
        )
        # One pass over the rooms' events joined (hash join) with the finished replies.
        return await self._exec(
            "DELETE FROM room_events e USING ("
            " SELECT room_id, data ->> 'reply_id' AS reply_id FROM room_events"
            " WHERE room_id = ANY(:rooms) AND type IN ('agent.done', 'agent.error')"
            + finished_runs
            + ") f WHERE e.room_id = f.room_id AND e.data ->> 'reply_id' = f.reply_id"
            " AND e.room_id = ANY(:rooms) AND e.type IN ('agent.delta', 'agent.reset')",
            {"rooms": room_ids},
        )

    async def redact_in_rooms(self, targets: Targets) -> int:
        """What others (people and agents) wrote in the subject's rooms that names or e-mails
        them: messages, every replayable event (message and agent streams), agent run text,
        the rooms' names and topics. The address and the @handle are replaced in every room
        the subject was in; the name alone only where iaf.privacy.names allows it
        (targets.name_room_ids), so nobody else's words lose an everyday word."""
        changed = 0
        for rooms, (pattern, replacement) in [
            *((targets.room_ids, exact) for exact in self._exact_redactions(targets)),
            (targets.name_room_ids, (word_regex(targets.name), ERASED)),
        ]:
            if rooms:
                changed += await self._redact(rooms, pattern, replacement)
        return changed

    async def _redact(self, rooms: list[uuid.UUID], pattern: str, replacement: str) -> int:
        params = {"re": pattern, "rep": replacement, "rooms": rooms}
        changed = await self._exec(
            "UPDATE rooms SET name = regexp_replace(name, :re, :rep, 'gi'),"
            " topic = regexp_replace(topic, :re, :rep, 'gi')"
            " WHERE id = ANY(:rooms) AND (name ~* :re OR topic ~* :re)",
            params,
        )
        changed += await self._exec(
            "UPDATE messages SET content = regexp_replace(content, :re, :rep, 'gi')"
            " WHERE room_id = ANY(:rooms) AND content ~* :re",
            params,
        )
        changed += await self._exec(
            "UPDATE room_events SET data = CAST(regexp_replace(data::text, :re, :rep, 'gi')"
            " AS jsonb)"
            " WHERE room_id = ANY(:rooms) AND data::text ~* :re",
            params,
        )
        if await table_exists(self.session, "agent_runs"):
            changed += await self._exec(
                "UPDATE agent_runs SET answer = regexp_replace(answer, :re, :rep, 'gi'),"
                " context = CAST(regexp_replace(context::text, :re, :rep, 'gi') AS jsonb)"
                " WHERE room_id = ANY(:rooms) AND (answer ~* :re OR context::text ~* :re)",
                params,
            )
        return changed

    async def redact_copies(self, targets: Targets) -> int:
        """The subject's words copied elsewhere in their rooms (iaf.privacy.fingerprints):
        in what agents wrote, every copy; in a person's message, a long verbatim quote only
        (a short overlap may be that person's own everyday phrase: left for review)."""
        if not targets.fingerprints or not targets.room_ids:
            return 0
        return await CopyRedactor(self.session, targets.fingerprints).in_rooms(targets.room_ids)

    # --- delete private data -------------------------------------------------------------

    async def delete_private_rooms(self, user_id: uuid.UUID) -> int:
        """Rooms no other person was ever part of (only the subject and agents)."""
        return await self._exec(
            "DELETE FROM rooms r USING room_members m WHERE m.room_id = r.id AND m.user_id = :uid"
            " AND NOT EXISTS (SELECT 1 FROM room_members o WHERE o.room_id = r.id AND o.user_id"
            " <> :uid)"
            " AND NOT EXISTS (SELECT 1 FROM messages x WHERE x.room_id = r.id"
            "  AND x.sender_user_id IS NOT NULL AND x.sender_user_id <> :uid)",
            {"uid": user_id},
        )

    async def delete_memories(self, user_id: uuid.UUID) -> int:
        if not await table_exists(self.session, "memories"):
            return 0
        return await self._exec("DELETE FROM memories WHERE user_id = :uid", {"uid": user_id})

    async def delete_knowledge(self, user_id: uuid.UUID) -> int:
        if not await table_exists(self.session, "knowledge_documents"):
            return 0
        return await self._exec(
            "DELETE FROM knowledge_documents WHERE owner_id = :uid", {"uid": user_id}
        )

    async def delete_consents(self, user_id: uuid.UUID) -> int:
        deleted = await self._exec("DELETE FROM consents WHERE user_id = :uid", {"uid": user_id})
        return deleted + await self._exec(
            "DELETE FROM consent_history WHERE user_id = :uid", {"uid": user_id}
        )

    async def delete_api_keys(self, user_id: uuid.UUID) -> int:
        return await self._exec("DELETE FROM api_keys WHERE user_id = :uid", {"uid": user_id})

    async def delete_exports(self, user_id: uuid.UUID) -> list[str]:
        """The subject's export requests go; returns every file name one of them may have left
        under the exports directory: `{id}.zip`, the `{id}.partial` of an interrupted write,
        and the recorded archive name."""
        rows = await self.session.execute(
            text(
                "DELETE FROM data_subject_requests WHERE kind = 'export' AND subject_user_id = :uid"
                " RETURNING id, archive_name"
            ),
            {"uid": user_id},
        )
        names: list[str] = []
        for request_id, archive_name in rows.all():
            names += [f"{request_id}.zip", f"{request_id}.partial"]
            if archive_name and archive_name not in names:
                names.append(str(archive_name))
        return names

    async def delete_rate_limit_buckets(self, targets: Targets) -> int:
        """Counters keyed `kind:e-mail` (login) or `kind:id` (posts, invites): short-lived,
        still not kept. The key is compared whole: joann@x.com's counters are not ann@x.com's."""
        return await self._exec(
            "DELETE FROM rate_limit_counters"
            " WHERE lower(substr(bucket, strpos(bucket, ':') + 1)) IN (lower(:email), :uid)",
            {"email": targets.email, "uid": str(targets.user_id)},
        )

    # --- delete the account --------------------------------------------------------------

    async def references_to_users(self) -> list[tuple[str, str, str, bool]]:
        """(table, column, on-delete action, nullable) for every foreign key to users.id."""
        rows = await self.session.execute(
            text(
                "SELECT cl.relname, a.attname, c.confdeltype, NOT a.attnotnull"
                " FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid"
                " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)"
                " WHERE c.contype = 'f' AND c.confrelid = 'public.users'::regclass"
                " AND array_length(c.conkey, 1) = 1"
            )
        )
        return [(str(r[0]), str(r[1]), str(r[2]), bool(r[3])) for r in rows.all()]

    async def release_references(self, user_id: uuid.UUID) -> dict[str, int]:
        """Foreign keys that would block the delete: nullable ones cleared, other rows deleted."""
        counts: dict[str, int] = {}
        for table, column, action, nullable in await self.references_to_users():
            if action in ("c", "n"):  # CASCADE / SET NULL: the DELETE does it
                continue
            name, col = quoted_identifier(table), quoted_identifier(column)
            if nullable:
                sql = f"UPDATE {name} SET {col} = NULL WHERE {col} = :uid"
            else:
                sql = f"DELETE FROM {name} WHERE {col} = :uid"
            counts[f"{table}.{column}"] = await self._exec(sql, {"uid": user_id})
        return counts

    async def delete_user(self, user_id: uuid.UUID) -> int:
        return await self._exec("DELETE FROM users WHERE id = :uid", {"uid": user_id})

    async def tidy_org(self, targets: Targets, default_name: str) -> int:
        """Sign-up names the org after its founder (`default_name`); an org left without
        people goes entirely. Otherwise its name is changed when it is that default, or holds
        the subject's full name where it may be replaced on its own (iaf.privacy.names)."""
        params = {
            "org": targets.org_id,
            "re": word_regex(targets.name),
            "default": default_name,
            "distinctive": is_distinctive(targets.name),
        }
        deleted = await self._exec(
            "DELETE FROM orgs o WHERE o.id = :org AND NOT EXISTS (SELECT 1 FROM users u WHERE"
            " u.org_id = o.id)"
            " AND NOT EXISTS (SELECT 1 FROM rooms r JOIN room_members m ON m.room_id = r.id WHERE"
            " r.org_id = o.id)",
            params,
        )
        if deleted:
            return deleted
        return await self._exec(
            "UPDATE orgs SET name = 'Organisation ' || left(id::text, 8) WHERE id = :org AND"
            " (lower(name) = lower(:default) OR (:distinctive AND name ~* :re))",
            params,
        )

"""Erasure in PostgreSQL: set-based statements, one small function per domain, plus the generic
scrub and verification scan that walk every text/jsonb/uuid column found in information_schema.

Every function is idempotent: it acts on what is still there, so a retried step does no harm.
Tables owned by other features are touched only when they exist.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import ErasureTarget, User
from iaf.db.repositories.gdpr_export import table_exists

TOMBSTONE = "[message removed: its author erased their account]"
ERASED = "[erased]"
# Never scrubbed generically: the subject's own row is deleted, targets are what we search for.
_SCRUB_SKIP = {"users", "erasure_targets", "alembic_version"}
_SCAN_SKIP = {"erasure_targets", "alembic_version"}
_TEXT_TYPES = ("text", "character varying", "character")
_JSON_TYPES = ("json", "jsonb")


@dataclass(frozen=True)
class Targets:
    user_id: uuid.UUID
    org_id: uuid.UUID
    email: str
    name: str
    handle: str
    account_created_at: datetime
    room_ids: list[uuid.UUID]


@dataclass(frozen=True)
class Column:
    table: str
    name: str
    data_type: str
    nullable: bool


@dataclass(frozen=True)
class Finding:
    location: str
    needle: str
    rows: int


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def regex_quote(value: str) -> str:
    """Escape a literal for a PostgreSQL ARE."""
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", value)


def like_pattern(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def word_regex(value: str) -> str:
    """Case-insensitive whole-word match, so erasing "Ann" leaves "Annual" alone."""
    start = r"\m" if re.match(r"\w", value[:1]) else ""
    end = r"\M" if re.match(r"\w", value[-1:]) else ""
    return start + regex_quote(value) + end


def _json_escaped(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


class ErasureRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _exec(self, sql: str, params: dict[str, Any]) -> int:
        result = await self.session.execute(text(sql), params)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def _ids(self, sql: str, params: dict[str, Any]) -> list[str]:
        return [str(r[0]) for r in (await self.session.execute(text(sql), params)).all()]

    # --- targets -----------------------------------------------------------------------

    async def capture_targets(self, request_id: uuid.UUID, user: User) -> None:
        """Remember what to search for before the account and its memberships disappear."""
        rooms = await self._ids(
            "SELECT room_id FROM room_members WHERE user_id = :uid"
            " UNION SELECT DISTINCT room_id FROM messages WHERE sender_user_id = :uid",
            {"uid": user.id},
        )
        await self.session.execute(
            pg_insert(ErasureTarget)
            .values(
                request_id=request_id,
                user_id=user.id,
                org_id=user.org_id,
                email=user.email,
                name=user.name,
                handle=user.handle,
                account_created_at=user.created_at,
                room_ids=rooms,
            )
            .on_conflict_do_nothing(index_elements=["request_id"])
        )

    async def targets(self, request_id: uuid.UUID) -> Targets | None:
        row = await self.session.get(ErasureTarget, request_id, populate_existing=True)
        if row is None:
            return None
        return Targets(
            user_id=row.user_id,
            org_id=row.org_id,
            email=row.email,
            name=row.name,
            handle=row.handle,
            account_created_at=row.account_created_at,
            room_ids=[uuid.UUID(r) for r in row.room_ids],
        )

    async def forget_targets(self, request_id: uuid.UUID) -> None:
        await self._exec("DELETE FROM erasure_targets WHERE request_id = :rid", {"rid": request_id})

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

    def _redactions(self, targets: Targets) -> list[tuple[str, str]]:
        return [
            (regex_quote(targets.email), ERASED),
            ("@" + word_regex(targets.handle), "@erased"),
            (word_regex(targets.name), ERASED),
        ]

    async def redact_in_rooms(self, targets: Targets) -> int:
        """What others (people and agents) wrote in the subject's rooms that names or e-mails
        them: messages, every replayable event (message and agent streams), agent run text."""
        if not targets.room_ids:
            return 0
        runs = await table_exists(self.session, "agent_runs")
        changed = 0
        for pattern, replacement in self._redactions(targets):
            params = {"re": pattern, "rep": replacement, "rooms": targets.room_ids}
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
            if runs:
                changed += await self._exec(
                    "UPDATE agent_runs SET answer = regexp_replace(answer, :re, :rep, 'gi'),"
                    " context = CAST(regexp_replace(context::text, :re, :rep, 'gi') AS jsonb)"
                    " WHERE room_id = ANY(:rooms) AND (answer ~* :re OR context::text ~* :re)",
                    params,
                )
        return changed

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
        """The subject's export requests go; returns their archive file names to remove."""
        rows = await self.session.execute(
            text(
                "DELETE FROM data_subject_requests WHERE kind = 'export' AND subject_user_id = :uid"
                " RETURNING archive_name"
            ),
            {"uid": user_id},
        )
        return [str(r[0]) for r in rows.all() if r[0]]

    async def delete_rate_limit_buckets(self, targets: Targets) -> int:
        """Counters keyed by e-mail (login) or id (posts, invites): short-lived, still not kept."""
        return await self._exec(
            "DELETE FROM rate_limit_counters WHERE bucket ILIKE :email OR bucket ILIKE :uid",
            {
                "email": like_pattern(targets.email.lower()),
                "uid": like_pattern(str(targets.user_id)),
            },
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
            if nullable:
                col = _ident(column)
                sql = f"UPDATE {_ident(table)} SET {col} = NULL WHERE {col} = :uid"
            else:
                sql = f"DELETE FROM {_ident(table)} WHERE {_ident(column)} = :uid"
            counts[f"{table}.{column}"] = await self._exec(sql, {"uid": user_id})
        return counts

    async def delete_user(self, user_id: uuid.UUID) -> int:
        return await self._exec("DELETE FROM users WHERE id = :uid", {"uid": user_id})

    async def tidy_org(self, targets: Targets) -> int:
        """Sign-up names the org after its founder; an org left without people goes entirely."""
        params = {"org": targets.org_id, "re": word_regex(targets.name)}
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
            "UPDATE orgs SET name = 'Organisation ' || left(id::text, 8) WHERE id = :org AND name"
            " ~* :re",
            params,
        )

    # --- generic scrub and scan -------------------------------------------------------------

    async def columns(self) -> list[Column]:
        rows = await self.session.execute(
            text(
                "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable = 'YES'"
                " FROM information_schema.columns c JOIN information_schema.tables t"
                " ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
                " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
                " AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb',"
                " 'uuid', 'ARRAY')"
                " ORDER BY c.table_name, c.ordinal_position"
            )
        )
        return [Column(str(r[0]), str(r[1]), str(r[2]), bool(r[3])) for r in rows.all()]

    async def _primary_key_columns(self) -> set[tuple[str, str]]:
        rows = await self.session.execute(
            text(
                "SELECT cl.relname, a.attname FROM pg_index i JOIN pg_class cl ON cl.oid ="
                " i.indrelid"
                " JOIN pg_namespace n ON n.oid = cl.relnamespace AND n.nspname = 'public'"
                " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                " WHERE i.indisprimary"
            )
        )
        return {(str(r[0]), str(r[1])) for r in rows.all()}

    async def scrub_everywhere(self, targets: Targets) -> dict[str, int]:
        """Replace the e-mail and id left in any text/jsonb column (ledger meta, events...)."""
        keys = await self._primary_key_columns()
        params = {
            "email_re": regex_quote(targets.email),
            "email_like": like_pattern(targets.email),
            "id_re": regex_quote(str(targets.user_id)),
            "id_like": like_pattern(str(targets.user_id)),
        }
        counts: dict[str, int] = {}
        for column in await self.columns():
            if column.table in _SCRUB_SKIP or (column.table, column.name) in keys:
                continue
            if column.data_type not in _TEXT_TYPES + _JSON_TYPES:
                continue
            col = _ident(column.name)
            as_text = f"{col}::text"
            no_email = f"regexp_replace({as_text}, :email_re, 'erased', 'gi')"
            replaced = f"regexp_replace({no_email}, :id_re, 'erased', 'gi')"
            value = (
                f"CAST({replaced} AS {column.data_type})"
                if column.data_type in _JSON_TYPES
                else replaced
            )
            sql = (
                f"UPDATE {_ident(column.table)} SET {col} = {value}"
                f" WHERE {as_text} ILIKE :email_like OR {as_text} ILIKE :id_like"
            )
            try:
                async with self.session.begin_nested():
                    changed = await self._exec(sql, params)
            except DBAPIError:
                counts[f"{column.table}.{column.name}:failed"] = 1
                continue
            if changed:
                counts[f"{column.table}.{column.name}"] = changed
        return counts

    async def scan(self, targets: Targets) -> tuple[int, list[Finding]]:
        """Columns checked and where the subject's e-mail, name or id still appear (counts only)."""
        params = {
            "email_like": like_pattern(targets.email),
            "json_email_like": like_pattern(_json_escaped(targets.email)),
            "name_re": word_regex(targets.name),
            "id_like": like_pattern(str(targets.user_id)),
            "uid": targets.user_id,
        }
        by_table: dict[str, list[Column]] = {}
        for column in await self.columns():
            if column.table not in _SCAN_SKIP:
                by_table.setdefault(column.table, []).append(column)
        findings: list[Finding] = []
        checked = 0
        for table, columns in by_table.items():
            probes: list[tuple[str, str, str]] = []
            for column in columns:
                col = _ident(column.name)
                if column.data_type == "uuid":
                    probes.append((column.name, "id", f"{col} = :uid"))
                    continue
                email_like = (
                    ":json_email_like" if column.data_type in _JSON_TYPES else ":email_like"
                )
                probes += [
                    (column.name, "email", f"{col}::text ILIKE {email_like}"),
                    (column.name, "name", f"{col}::text ~* :name_re"),
                    (column.name, "id", f"{col}::text ILIKE :id_like"),
                ]
            checked += len(columns)
            counts = ", ".join(f"count(*) FILTER (WHERE {condition})" for _, _, condition in probes)
            row = (
                await self.session.execute(text(f"SELECT {counts} FROM {_ident(table)}"), params)
            ).one()
            for (column_name, needle, _), rows in zip(probes, row, strict=True):
                if rows:
                    findings.append(Finding(f"postgres:{table}.{column_name}", needle, int(rows)))
        return checked, findings

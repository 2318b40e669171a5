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
from datetime import datetime, timedelta
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
# The e-mail and name kept for the scans never outlive this, whatever the request's state.
TARGETS_MAX_AGE = timedelta(days=31)
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


# The SQL twin of iaf.gdpr.scan.email_pattern: a whole address, so erasing ann@x.com leaves
# joann@x.com and ann@x.com.au alone (PostgreSQL AREs have look-behind since 9.6).
_ADDRESS_BEFORE = "[[:alnum:]_!#$%&*+/=?^`{|}~.-]"
_ADDRESS_AFTER = "[[:alnum:]_-]|\\.[[:alnum:]]"


def email_regex(email: str) -> str:
    forms = sorted({email, _json_escaped(email)}, key=len, reverse=True)
    alternatives = "|".join(regex_quote(f) for f in forms)
    return f"(?<!{_ADDRESS_BEFORE})(?:{alternatives})(?!{_ADDRESS_AFTER})"


def handle_regex(handle: str) -> str:
    """An @mention of exactly this handle: `@ann-lee` is not in `@ann-lee-3f2a` (a namesake's
    handle gets a suffix) nor in the address `x@ann-lee.org`."""
    return f"(?<![[:alnum:]_.+-])@{regex_quote(handle)}(?![[:alnum:]_-]|\\.[[:alnum:]])"


def _json_escaped(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def is_email_column(column: Column) -> bool:
    """Columns that hold one address each: compared whole, never searched inside."""
    return column.data_type in _TEXT_TYPES and (
        column.name == "email" or column.name.endswith("_email")
    )


# Where the subject's name is a trace of them, not a coincidence: the columns the anonymise
# step redacts, in the rows that belong to the subject's rooms (or org). The same name
# anywhere else (another person called the same, someone else's room) is only counted for
# review; a finding there could never be cleared and would fail every verification.
NAME_SCOPES: dict[tuple[str, str], str] = {
    ("messages", "content"): "room_id = ANY(:rooms)",
    ("room_events", "data"): "room_id = ANY(:rooms)",
    ("agent_runs", "answer"): "room_id = ANY(:rooms)",
    ("agent_runs", "context"): "room_id = ANY(:rooms)",
    ("rooms", "name"): "id = ANY(:rooms)",
    ("rooms", "topic"): "id = ANY(:rooms)",
    ("orgs", "name"): "id = :org",
}


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

    async def purge_stale_targets(self, max_age: timedelta = TARGETS_MAX_AGE) -> int:
        """The e-mail and name kept for the scans go once a request is over (complete or
        cancelled) and, whatever its state, after `max_age`: a request stuck in error does not
        keep them for ever (a retry then needs the account, i.e. runs from the freeze step)."""
        return await self._exec(
            "DELETE FROM erasure_targets t USING data_subject_requests r"
            " WHERE r.id = t.request_id AND (r.status IN ('complete', 'cancelled')"
            " OR t.created_at < now() - CAST(:age AS interval))",
            {"age": max_age},
        )

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
            (email_regex(targets.email), ERASED),
            (handle_regex(targets.handle), "@erased"),
            (word_regex(targets.name), ERASED),
        ]

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
        the rooms' names and topics."""
        if not targets.room_ids:
            return 0
        runs = await table_exists(self.session, "agent_runs")
        changed = 0
        for pattern, replacement in self._redactions(targets):
            params = {"re": pattern, "rep": replacement, "rooms": targets.room_ids}
            changed += await self._exec(
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
        """Replace the e-mail and id left in any text/jsonb column (ledger meta, events...).
        An e-mail column is cleared only when it holds exactly the subject's address; free
        text loses the address only where it stands whole (see email_regex)."""
        keys = await self._primary_key_columns()
        params = {
            "email": targets.email,
            "email_re": email_regex(targets.email),
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
            if is_email_column(column):
                sql = (
                    f"UPDATE {_ident(column.table)} SET {col} = 'erased'"
                    f" WHERE lower({col}) = lower(:email)"
                )
            else:
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
                    f" WHERE ({as_text} ILIKE :email_like AND {as_text} ~* :email_re)"
                    f" OR {as_text} ILIKE :id_like"
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

    async def scan(self, targets: Targets) -> tuple[int, list[Finding], list[Finding]]:
        """Columns checked, where the subject's e-mail, name or id still appear, and where only
        their name appears outside what links it to them (counted for review, not a failure).

        The e-mail and the id are traces anywhere. The name is a trace in the columns of
        NAME_SCOPES, within the subject's rooms (or org); the same words elsewhere, such as
        another user of the same name, are reported as review counts. Counts only, no values.
        """
        params = {
            "email": targets.email,
            "email_like": like_pattern(targets.email),
            "email_re": email_regex(targets.email),
            "name_re": word_regex(targets.name),
            "id_like": like_pattern(str(targets.user_id)),
            "uid": targets.user_id,
            "rooms": targets.room_ids,
            "org": targets.org_id,
        }
        by_table: dict[str, list[Column]] = {}
        for column in await self.columns():
            if column.table not in _SCAN_SKIP:
                by_table.setdefault(column.table, []).append(column)
        findings: list[Finding] = []
        review: list[Finding] = []
        checked = 0
        for table, columns in by_table.items():
            # (column, needle, condition, counts as a finding)
            probes: list[tuple[str, str, str, bool]] = []
            for column in columns:
                col = _ident(column.name)
                if column.data_type == "uuid":
                    probes.append((column.name, "id", f"{col} = :uid", True))
                    continue
                as_text = f"{col}::text"
                if is_email_column(column):
                    probes.append((column.name, "email", f"lower({col}) = lower(:email)", True))
                else:
                    email = f"{as_text} ILIKE :email_like AND {as_text} ~* :email_re"
                    probes.append((column.name, "email", email, True))
                name = f"{as_text} ~* :name_re"
                scope = NAME_SCOPES.get((table, column.name))
                if scope is None:
                    probes.append((column.name, "name", name, False))
                else:
                    probes.append((column.name, "name", f"{name} AND ({scope})", True))
                    probes.append((column.name, "name", f"{name} AND ({scope}) IS NOT TRUE", False))
                probes.append((column.name, "id", f"{as_text} ILIKE :id_like", True))
            checked += len(columns)
            counts = ", ".join(f"count(*) FILTER (WHERE {c})" for _, _, c, _ in probes)
            row = (
                await self.session.execute(text(f"SELECT {counts} FROM {_ident(table)}"), params)
            ).one()
            for (column_name, needle, _, trace), rows in zip(probes, row, strict=True):
                if rows:
                    found = Finding(f"postgres:{table}.{column_name}", needle, int(rows))
                    (findings if trace else review).append(found)
        streams = await self._scan_agent_streams(params)
        checked += 1
        findings += streams
        return checked, findings, review

    async def _scan_agent_streams(self, params: dict[str, Any]) -> list[Finding]:
        """Replies still streaming in the subject's rooms, each read as one joined text: a
        name split across two agent.delta events is still the name."""
        if not params["rooms"]:
            return []
        row = (
            await self.session.execute(
                text(
                    "SELECT count(*) FILTER (WHERE t ILIKE :email_like AND t ~* :email_re),"
                    " count(*) FILTER (WHERE t ~* :name_re), count(*) FILTER (WHERE t ILIKE"
                    " :id_like) FROM (SELECT string_agg(data ->> 'text', '' ORDER BY id) AS t"
                    " FROM room_events WHERE room_id = ANY(:rooms) AND type = 'agent.delta'"
                    " GROUP BY data ->> 'reply_id', data ->> 'attempt') s"
                ),
                params,
            )
        ).one()
        return [
            Finding("postgres:room_events.agent_stream", needle, int(rows))
            for needle, rows in zip(("email", "name", "id"), row, strict=True)
            if rows
        ]

"""The generic half of an erasure: walk every text/jsonb/uuid column found in
information_schema, to scrub what the per-domain statements left and to verify that nothing
of the subject remains (counts only, never values)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.erasure_patterns import (
    email_regex,
    like_pattern,
    quoted_identifier,
    regex_quote,
    word_regex,
)
from iaf.db.repositories.erasure_targets import Targets
from iaf.db.repositories.text_copies import CopyRedactor
from iaf.privacy.names import is_distinctive

# Never scrubbed generically: the subject's own row is deleted, targets are what we search for.
_SCRUB_SKIP = {"users", "erasure_targets", "alembic_version"}
_SCAN_SKIP = {"erasure_targets", "alembic_version"}
_TEXT_TYPES = ("text", "character varying", "character")
_JSON_TYPES = ("json", "jsonb")


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


def is_email_column(column: Column) -> bool:
    """Columns that hold one address each: compared whole, never searched inside."""
    return column.data_type in _TEXT_TYPES and (
        column.name == "email" or column.name.endswith("_email")
    )


# Where the subject's name is a trace of them, not a coincidence: the columns the anonymise
# step redacts, in the rooms where it replaces the name alone (targets.name_room_ids: their
# organisation's rooms, a distinctive name nobody else there bears) and their organisation's
# name. The same name anywhere else (a namesake, an everyday word, another organisation's
# room) is only counted for review; a finding there could never be cleared.
NAME_SCOPES: dict[tuple[str, str], str] = {
    ("messages", "content"): "room_id = ANY(:name_rooms)",
    ("room_events", "data"): "room_id = ANY(:name_rooms)",
    ("agent_runs", "answer"): "room_id = ANY(:name_rooms)",
    ("agent_runs", "context"): "room_id = ANY(:name_rooms)",
    ("rooms", "name"): "id = ANY(:name_rooms)",
    ("rooms", "topic"): "id = ANY(:name_rooms)",
    ("orgs", "name"): "id = :org AND :name_distinctive",
}


class ErasureScanRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _exec(self, sql: str, params: dict[str, Any]) -> int:
        result = await self.session.execute(text(sql), params)
        return int(result.rowcount)  # type: ignore[attr-defined]

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
            col = quoted_identifier(column.name)
            if is_email_column(column):
                sql = (
                    f"UPDATE {quoted_identifier(column.table)} SET {col} = 'erased'"
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
                    f"UPDATE {quoted_identifier(column.table)} SET {col} = {value}"
                    f" WHERE ({as_text} ILIKE :email_like AND {as_text} ~* :email_re)"
                    f" OR {as_text} ILIKE :id_like"
                )
            try:
                async with self.session.begin_nested():
                    changed = await self._exec(sql, params)
            except DBAPIError as exc:
                # Which column and why (the SQLSTATE), never the values: the step reports it.
                code = getattr(exc.orig, "sqlstate", None) or type(exc.orig).__name__
                counts[f"{column.table}.{column.name}:failed:{code}"] = 1
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
            "name_rooms": targets.name_room_ids,
            "name_distinctive": is_distinctive(targets.name),
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
                col = quoted_identifier(column.name)
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
                await self.session.execute(
                    text(f"SELECT {counts} FROM {quoted_identifier(table)}"), params
                )
            ).one()
            for (column_name, needle, _, trace), rows in zip(probes, row, strict=True):
                if rows:
                    found = Finding(f"postgres:{table}.{column_name}", needle, int(rows))
                    (findings if trace else review).append(found)
        streams = await self._scan_agent_streams(params)
        checked += 1
        findings += streams
        for copy in await CopyRedactor(self.session, targets.fingerprints).count(
            targets.room_ids, targets.org_id
        ):
            (findings if copy.trace else review).append(Finding(copy.location, "text", copy.rows))
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
                    " count(*) FILTER (WHERE t ~* :name_re AND room_id = ANY(:name_rooms)),"
                    " count(*) FILTER (WHERE t ILIKE :id_like) FROM (SELECT room_id,"
                    " string_agg(data ->> 'text', '' ORDER BY id) AS t"
                    " FROM room_events WHERE room_id = ANY(:rooms) AND type = 'agent.delta'"
                    " GROUP BY room_id, data ->> 'reply_id', data ->> 'attempt') s"
                ),
                params,
            )
        ).one()
        return [
            Finding("postgres:room_events.agent_stream", needle, int(rows))
            for needle, rows in zip(("email", "name", "id"), row, strict=True)
            if rows
        ]

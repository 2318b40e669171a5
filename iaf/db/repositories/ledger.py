"""The credit ledger: idempotent appends keyed by (source, source_id), balances and history."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import LedgerEntry

SIGNUP_SOURCE = "signup"
REFERRAL_SOURCE = "referral"


_BOOK_IF_COVERED = text(
    """
    WITH existing AS (
        SELECT 1 FROM ledger_entries WHERE source = :source AND source_id = :source_id
    ), balance AS (
        SELECT COALESCE(sum(amount), 0) AS total FROM ledger_entries WHERE user_id = :user_id
    ), booked AS (
        INSERT INTO ledger_entries (user_id, amount, kind, source, source_id, meta)
        SELECT :user_id, -CAST(:amount AS integer), :kind, :source, :source_id,
               CAST(:meta AS jsonb)
        FROM balance
        WHERE NOT EXISTS (SELECT 1 FROM existing) AND balance.total >= :amount
        ON CONFLICT (source, source_id) DO NOTHING
        RETURNING id
    )
    SELECT EXISTS (SELECT 1 FROM existing) AS already, EXISTS (SELECT 1 FROM booked) AS booked
    """
)


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def append(
        self,
        user_id: uuid.UUID,
        amount: int,
        kind: str,
        source: str,
        source_id: str,
        meta: dict[str, Any] | None = None,
    ) -> bool:
        """False when (source, source_id) is already booked: a retry never books twice."""
        result = await self.session.execute(
            pg_insert(LedgerEntry)
            .values(
                user_id=user_id,
                amount=amount,
                kind=kind,
                source=source,
                source_id=source_id,
                meta=meta or {},
            )
            .on_conflict_do_nothing(index_elements=["source", "source_id"])
            .returning(LedgerEntry.id)
        )
        return result.first() is not None

    async def grant_starting_credits(self, user_id: uuid.UUID, amount: int) -> bool:
        """Every new account's first entry; keyed by the user id, so it happens once."""
        if amount <= 0:
            return False
        return await self.append(user_id, amount, "grant", SIGNUP_SOURCE, str(user_id))

    async def balance(self, user_id: uuid.UUID) -> int:
        total = await self.session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                LedgerEntry.user_id == user_id
            )
        )
        return int(total or 0)

    async def history(
        self, user_id: uuid.UUID, before: int | None, limit: int
    ) -> list[LedgerEntry]:
        """Newest first; page on with before = the last id seen."""
        query = select(LedgerEntry).where(LedgerEntry.user_id == user_id)
        if before is not None:
            query = query.where(LedgerEntry.id < before)
        rows = await self.session.scalars(query.order_by(LedgerEntry.id.desc()).limit(limit))
        return list(rows)

    async def entry(self, source: str, source_id: str) -> LedgerEntry | None:
        return await self.session.scalar(
            select(LedgerEntry).where(
                LedgerEntry.source == source, LedgerEntry.source_id == source_id
            )
        )

    async def book_if_covered(
        self,
        user_id: uuid.UUID,
        amount: int,
        kind: str,
        source: str,
        source_id: str,
        meta: dict[str, Any],
    ) -> bool:
        """Book a debit (`amount` > 0 is taken off) when the balance covers it, in one
        statement; True when it is booked now or was booked before under the same key.
        Call with the user locked (lock_user), so the balance cannot change meanwhile."""
        row = (
            await self.session.execute(
                _BOOK_IF_COVERED,
                {
                    "user_id": user_id,
                    "amount": amount,
                    "kind": kind,
                    "source": source,
                    "source_id": source_id,
                    "meta": json.dumps(meta, separators=(",", ":")),
                },
            )
        ).one()
        return bool(row.already or row.booked)

    async def lock_user(self, user_id: uuid.UUID) -> None:
        """Serialise check-then-book sequences (a reservation against the balance) per user."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 41))"),
            {"key": f"ledger:{user_id}"},
        )

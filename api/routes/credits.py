"""A user's credits (balance and history) and the referrals they made."""

from __future__ import annotations

from fastapi import APIRouter, Query

from api.deps import CurrentUser, SessionDep
from iaf.db.repositories.ledger import LedgerRepository
from iaf.db.repositories.referrals import ReferralRepository
from schemas.common import MAX_BIGINT
from schemas.invitations import ReferralOut
from schemas.ledger import CreditsOut, LedgerEntryOut

router = APIRouter(tags=["credits"])


@router.get("/api/credits")
async def get_credits(
    user: CurrentUser,
    session: SessionDep,
    before: int | None = Query(default=None, ge=1, le=MAX_BIGINT),
    limit: int = Query(default=50, ge=1, le=200),
) -> CreditsOut:
    """Balance and newest-first history; `next_before` pages on to older entries."""
    ledger = LedgerRepository(session)
    entries = await ledger.history(user.id, before, limit)
    return CreditsOut(
        balance=await ledger.balance(user.id),
        items=[LedgerEntryOut.model_validate(e) for e in entries],
        next_before=entries[-1].id if len(entries) == limit else None,
    )


@router.get("/api/referrals")
async def list_referrals(user: CurrentUser, session: SessionDep) -> dict[str, list[ReferralOut]]:
    """Referrals the caller made, with their status: pending, granted, expired or capped."""
    rows = await ReferralRepository(session).list_for_referrer(user.id)
    return {
        "items": [
            ReferralOut(
                id=r.id,
                status=r.status,
                referred_user_id=r.referred_user_id,
                referred_name=name,
                reward_credits=r.reward_credits,
                created_at=r.created_at,
                deadline_at=r.deadline_at,
                first_action_at=r.first_action_at,
                decided_at=r.decided_at,
            )
            for r, name in rows
        ]
    }

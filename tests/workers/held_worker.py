"""The real `iaf worker`, with the referral grant held at one point so a test can SIGKILL it.

    python -m tests.workers.held_worker <hold> <flag file> [iaf worker options]

<hold> is where the grant stops, for good:
- `grant-before-commit`: the ledger entry is inserted, its transaction still open;
- `grant-after-commit`: the transaction committed, the activity has not reported back.

The flag file appears when the hold begins. The hold lives in this test-only entry point, not
in the product: production workers have no way to pause on purpose.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.ledger import LedgerActivities
from iaf.db.repositories.ledger import LedgerRepository
from schemas.invitations import ReferralOutcome, ReferralRef
from workers import registry

HOLDS = ("grant-before-commit", "grant-after-commit")


class HeldLedger(LedgerActivities):
    flag: Path

    @activity.defn(name="grant_referral")
    async def grant_referral(self, ref: ReferralRef) -> ReferralOutcome:
        outcome = await super().grant_referral(ref)  # committed
        await _hold(self.flag)
        return outcome


async def _hold(flag: Path) -> None:
    await asyncio.to_thread(flag.write_text, "held\n")
    await asyncio.Event().wait()  # until SIGKILL


def install(hold: str, flag: Path) -> None:
    if hold == "grant-before-commit":
        append = LedgerRepository.append

        async def held_append(self: LedgerRepository, *args: Any, **kwargs: Any) -> Any:
            inserted = await append(self, *args, **kwargs)
            await self.session.flush()
            await _hold(flag)
            return inserted

        LedgerRepository.append = held_append  # type: ignore[method-assign]
    elif hold == "grant-after-commit":
        HeldLedger.flag = flag
        registry.LedgerActivities = HeldLedger  # type: ignore[misc]
    else:
        raise SystemExit(f"hold must be one of {HOLDS}")


if __name__ == "__main__":
    install(sys.argv[1], Path(sys.argv[2]))
    from iaf.cli import app

    app(["worker", *sys.argv[3:]])

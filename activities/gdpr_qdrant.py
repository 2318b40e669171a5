"""Erasure in Qdrant: delete the subject's points by payload filter, verify none are left.

Runs on settings.temporal_retrieval_task_queue, in the process that holds the vector store.
"""

from __future__ import annotations

import json
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from iaf.db.repositories.erasure_targets import ErasureTargetRepository, Targets
from iaf.gdpr.scan import Needles
from iaf.gdpr.stepping import run_step
from iaf.retrieval.vectors import VectorBackend, Where, where
from schemas.gdpr import FindingOut, StepInput, StepResult, VerificationPart

# Collection → the payload key that names the person a point belongs to.
OWNER_KEYS = {"knowledge": "owner_id", "memories": "user_id"}
_SCROLL_PAGE = 1000


def owner_filter(key: str, user_id: uuid.UUID) -> Where:
    return where(**{key: str(user_id)})


class GdprQdrantActivities:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], vectors: VectorBackend
    ) -> None:
        self.sessionmaker = sessionmaker
        self.vectors = vectors

    async def _targets(self, session: AsyncSession, request_id: str) -> Targets:
        targets = await ErasureTargetRepository(session).get(uuid.UUID(request_id))
        if targets is None:
            raise ApplicationError("erasure targets missing", type="NoTargets", non_retryable=True)
        return targets

    async def delete_owned(self, user_id: uuid.UUID) -> dict[str, int]:
        """Delete by owner filter, then count: the step only succeeds when nothing is left."""
        counts: dict[str, int] = {}
        existing = await self.vectors.collections()
        for collection, key in OWNER_KEYS.items():
            if collection not in existing:
                continue
            selector = owner_filter(key, user_id)
            before = await self.vectors.count(collection, selector)
            await self.vectors.delete(collection, selector)
            left = await self.vectors.count(collection, selector)
            if left:
                raise RuntimeError(f"{left} points of the subject left in {collection}")
            counts[collection] = before
        return counts

    @activity.defn(name="gdpr_delete_vectors")
    async def delete_vectors(self, input: StepInput) -> StepResult:
        async def body(session: AsyncSession) -> StepResult:
            targets = await self._targets(session, input.request_id)
            return StepResult(step=input.step, counts=await self.delete_owned(targets.user_id))

        return await run_step(self.sessionmaker, input, body)

    async def scan(self, targets: Targets) -> tuple[int, list[FindingOut], list[FindingOut]]:
        """Read every payload of every collection and look for the subject: the e-mail and the
        id anywhere are traces; the name and quotes of their messages are in a point that is
        theirs (owner id), and only counted for review elsewhere (a colleague's document
        naming a namesake, or quoting them)."""
        needles = Needles.of(
            targets.email, targets.name, str(targets.user_id), targets.fingerprints
        )
        subject = str(targets.user_id)
        checked = 0
        findings: list[FindingOut] = []
        review: list[FindingOut] = []
        for collection in await self.vectors.collections():
            owner_key = OWNER_KEYS.get(collection)
            hits: dict[tuple[str, bool], int] = {}
            offset: str | None = None
            while True:
                points, offset = await self.vectors.scroll(collection, _SCROLL_PAGE, offset)
                for point in points:
                    checked += 1
                    payload = point.payload
                    owned = owner_key is not None and str(payload.get(owner_key)) == subject
                    text = json.dumps(payload, ensure_ascii=False, default=str)
                    for kind in needles.found_in_text(text):
                        # The name or a quote in someone else's document: for review.
                        key = (kind, kind not in ("name", "text") or owned)
                        hits[key] = hits.get(key, 0) + 1
                if offset is None:
                    break
            for (kind, trace), rows in hits.items():
                found = FindingOut(location=f"qdrant:{collection}", needle=kind, rows=rows)
                (findings if trace else review).append(found)
        return checked, findings, review

    @activity.defn(name="gdpr_verify_qdrant")
    async def verify_qdrant(self, input: StepInput) -> VerificationPart:
        async def body(session: AsyncSession) -> VerificationPart:
            targets = await self._targets(session, input.request_id)
            checked, findings, review = await self.scan(targets)
            return VerificationPart(
                store="qdrant", checked=checked, findings=findings, review=review
            )

        return await run_step(self.sessionmaker, input, body, completes_step=False)

"""Erasure in Qdrant: delete the subject's points by payload filter, verify none are left.

Runs on settings.temporal_retrieval_task_queue, in the one process that owns the Qdrant client.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from qdrant_client import AsyncQdrantClient, models
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from iaf.db.repositories.erasure_targets import ErasureTargetRepository, Targets
from iaf.gdpr.scan import Needles
from iaf.gdpr.stepping import run_step
from schemas.gdpr import FindingOut, StepInput, StepResult, VerificationPart

# Collection → the payload key that names the person a point belongs to.
OWNER_KEYS = {"knowledge": "owner_id", "memories": "user_id"}
_SCROLL_PAGE = 1000


def owner_filter(key: str, user_id: uuid.UUID) -> models.Filter:
    return models.Filter(
        must=[models.FieldCondition(key=key, match=models.MatchValue(value=str(user_id)))]
    )


class GdprQdrantActivities:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], qdrant: AsyncQdrantClient
    ) -> None:
        self.sessionmaker = sessionmaker
        self.qdrant = qdrant

    async def _targets(self, session: AsyncSession, request_id: str) -> Targets:
        targets = await ErasureTargetRepository(session).get(uuid.UUID(request_id))
        if targets is None:
            raise ApplicationError("erasure targets missing", type="NoTargets", non_retryable=True)
        return targets

    async def delete_owned(self, user_id: uuid.UUID) -> dict[str, int]:
        """Delete by owner filter, then count: the step only succeeds when nothing is left."""
        counts: dict[str, int] = {}
        for collection, key in OWNER_KEYS.items():
            if not await self.qdrant.collection_exists(collection):
                continue
            selector = owner_filter(key, user_id)
            before = (await self.qdrant.count(collection, count_filter=selector, exact=True)).count
            await self.qdrant.delete(
                collection, points_selector=models.FilterSelector(filter=selector), wait=True
            )
            left = (await self.qdrant.count(collection, count_filter=selector, exact=True)).count
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
        for collection in (await self.qdrant.get_collections()).collections:
            owner_key = OWNER_KEYS.get(collection.name)
            hits: dict[tuple[str, bool], int] = {}
            offset: Any = None
            while True:
                points, offset = await self.qdrant.scroll(
                    collection.name,
                    limit=_SCROLL_PAGE,
                    offset=offset,
                    with_payload=True,
                    with_vectors=False,
                )
                for point in points:
                    checked += 1
                    payload = point.payload or {}
                    owned = owner_key is not None and str(payload.get(owner_key)) == subject
                    text = json.dumps(payload, ensure_ascii=False, default=str)
                    for kind in needles.found_in_text(text):
                        # The name or a quote in someone else's document: for review.
                        key = (kind, kind not in ("name", "text") or owned)
                        hits[key] = hits.get(key, 0) + 1
                if offset is None:
                    break
            for (kind, trace), rows in hits.items():
                found = FindingOut(location=f"qdrant:{collection.name}", needle=kind, rows=rows)
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

"""What the operators' gauges read: GDPR requests against their deadline, the sweep's backlog.

Aggregates only (counts, ages): no row, id or subject leaves these queries.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import DataSubjectRequest, Message
from schemas.gdpr import OPEN_STATUSES


@dataclass(frozen=True)
class OpenRequests:
    kind: str
    overdue: int
    oldest_age_seconds: float
    seconds_to_nearest_deadline: float


class OpsMetricsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def gdpr_requests_by_status(self) -> dict[tuple[str, str], int]:
        rows = await self.session.execute(
            select(DataSubjectRequest.kind, DataSubjectRequest.status, func.count()).group_by(
                DataSubjectRequest.kind, DataSubjectRequest.status
            )
        )
        return {(kind, status): int(count) for kind, status, count in rows}

    async def open_gdpr_requests(self) -> list[OpenRequests]:
        """Per kind, over the open requests: how many are past due, the oldest, the nearest."""
        now = func.now()
        rows = await self.session.execute(
            select(
                DataSubjectRequest.kind,
                func.count().filter(DataSubjectRequest.due_at < now),
                func.extract("epoch", now - func.min(DataSubjectRequest.created_at)),
                func.extract("epoch", func.min(DataSubjectRequest.due_at) - now),
            )
            .where(DataSubjectRequest.status.in_(OPEN_STATUSES))
            .group_by(DataSubjectRequest.kind)
        )
        return [
            OpenRequests(kind, int(overdue), float(oldest), float(nearest))
            for kind, overdue, oldest, nearest in rows
        ]

    async def unrouted_backlog(self, min_age_seconds: float) -> int:
        """Messages the sweep would look at (the partial index ix_messages_unrouted)."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.routed_at.is_(None),
                Message.created_at
                < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, min_age_seconds),
            )
        )
        return int(count or 0)

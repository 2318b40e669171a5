"""Data-subject requests (GDPR export and erasure), their steps and export download tokens."""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import DataSubjectRequest, DataSubjectRequestStep, ExportDownloadToken
from schemas.gdpr import OPEN_STATUSES, steps_for

LIVE_LINKS = 20
_OPEN_WHERE = text("status IN ('pending', 'in_grace', 'in_progress', 'error')")


def one_month_after(moment: datetime) -> datetime:
    """Art. 12(3): one calendar month, clamped to the month's last day (31 Jan → 28/29 Feb)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


class RequestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_or_create(
        self,
        *,
        kind: str,
        subject_user_id: uuid.UUID,
        subject_ref: str,
        org_id: uuid.UUID,
        requested_via: str,
        requested_by: uuid.UUID,
        requested_by_ref: str,
        reason: str,
        grace: timedelta | None = None,
    ) -> tuple[DataSubjectRequest, bool]:
        """The subject's open request of this kind, or a new one (created=True) with its steps."""
        now = datetime.now(UTC)
        grace_until = now + grace if grace else None
        for _ in range(3):
            statement = (
                pg_insert(DataSubjectRequest)
                .values(
                    id=uuid.uuid4(),
                    kind=kind,
                    subject_user_id=subject_user_id,
                    subject_ref=subject_ref,
                    org_id=org_id,
                    requested_via=requested_via,
                    requested_by=requested_by,
                    requested_by_ref=requested_by_ref,
                    reason=reason,
                    status="in_grace" if grace_until else "pending",
                    due_at=one_month_after(now),
                    grace_until=grace_until,
                )
                .on_conflict_do_nothing(
                    index_elements=["kind", "subject_user_id"], index_where=_OPEN_WHERE
                )
                .returning(DataSubjectRequest)
            )
            created = (await self.session.execute(statement)).scalar_one_or_none()
            if created is not None:
                await self._create_steps(created)
                return created, True
            existing = await self.open_for(kind, subject_user_id)
            if existing is not None:
                return existing, False
        raise RuntimeError("could not create or find an open request")

    async def _create_steps(self, request: DataSubjectRequest) -> None:
        for position, step in enumerate(steps_for(request.kind)):
            self.session.add(
                DataSubjectRequestStep(
                    request_id=request.id, step=step, position=position, detail={}
                )
            )
        await self.session.flush()

    async def open_for(self, kind: str, subject_user_id: uuid.UUID) -> DataSubjectRequest | None:
        return await self.session.scalar(
            select(DataSubjectRequest).where(
                DataSubjectRequest.kind == kind,
                DataSubjectRequest.subject_user_id == subject_user_id,
                DataSubjectRequest.status.in_(OPEN_STATUSES),
            )
        )

    async def erasure_underway(self, subject_user_id: uuid.UUID) -> bool:
        """The account is frozen, or an erasure has begun (past its grace period): no export
        may start now, it would copy what the erasure is removing."""
        return bool(
            await self.session.scalar(
                text(
                    "SELECT EXISTS (SELECT 1 FROM users WHERE id = :uid AND status <> 'active')"
                    " OR EXISTS (SELECT 1 FROM data_subject_requests WHERE kind = 'erasure'"
                    " AND subject_user_id = :uid AND status IN ('in_progress', 'error'))"
                ),
                {"uid": subject_user_id},
            )
        )

    async def restart(self, request_id: uuid.UUID) -> bool:
        """A failed request runs again from its failed step (self-service asks again)."""
        done = await self.set_status(request_id, "pending", only_from=("error",), failed_step=None)
        if done:
            await self.session.execute(
                update(DataSubjectRequestStep)
                .where(
                    DataSubjectRequestStep.request_id == request_id,
                    DataSubjectRequestStep.status.in_(("error", "running")),
                )
                .values(status="pending", finished_at=None)
            )
        return done

    async def latest_for(self, kind: str, subject_user_id: uuid.UUID) -> DataSubjectRequest | None:
        return await self.session.scalar(
            select(DataSubjectRequest)
            .where(
                DataSubjectRequest.kind == kind,
                DataSubjectRequest.subject_user_id == subject_user_id,
            )
            .order_by(DataSubjectRequest.created_at.desc())
            .limit(1)
        )

    async def resumable(self, min_age: timedelta, limit: int) -> list[DataSubjectRequest]:
        """Requests that should have a running workflow (pending, in grace, in progress) and
        have not changed for `min_age` (an API call may be starting one right now)."""
        rows = await self.session.scalars(
            select(DataSubjectRequest)
            .where(
                DataSubjectRequest.status.in_(("pending", "in_grace", "in_progress")),
                DataSubjectRequest.updated_at < func.now() - min_age,
            )
            # Random: a backlog larger than `limit` is still covered over a few rounds.
            .order_by(func.random())
            .limit(limit)
        )
        return list(rows)

    async def get(self, request_id: uuid.UUID, *, lock: bool = False) -> DataSubjectRequest | None:
        """With lock, FOR SHARE: a concurrent status change waits until this transaction ends."""
        return await self.session.get(
            DataSubjectRequest,
            request_id,
            populate_existing=True,
            with_for_update={"read": True} if lock else None,
        )

    async def search(
        self,
        org_id: uuid.UUID,
        *,
        kind: str | None = None,
        status: str | None = None,
        subject_user_id: uuid.UUID | None = None,
        before: datetime | None = None,
        limit: int = 50,
    ) -> list[DataSubjectRequest]:
        query = select(DataSubjectRequest).where(DataSubjectRequest.org_id == org_id)
        if kind is not None:
            query = query.where(DataSubjectRequest.kind == kind)
        if status is not None:
            query = query.where(DataSubjectRequest.status == status)
        if subject_user_id is not None:
            query = query.where(DataSubjectRequest.subject_user_id == subject_user_id)
        if before is not None:
            query = query.where(DataSubjectRequest.created_at < before)
        rows = await self.session.scalars(
            query.order_by(DataSubjectRequest.created_at.desc()).limit(limit)
        )
        return list(rows)

    async def steps(
        self, request_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[DataSubjectRequestStep]]:
        found: dict[uuid.UUID, list[DataSubjectRequestStep]] = {i: [] for i in request_ids}
        if not request_ids:
            return found
        rows = await self.session.scalars(
            select(DataSubjectRequestStep)
            .where(DataSubjectRequestStep.request_id.in_(request_ids))
            .order_by(DataSubjectRequestStep.request_id, DataSubjectRequestStep.position)
            .execution_options(populate_existing=True)
        )
        for step in rows:
            found[step.request_id].append(step)
        return found

    async def set_status(
        self,
        request_id: uuid.UUID,
        status: str,
        *,
        only_from: Sequence[str] | None = None,
        **values: Any,
    ) -> bool:
        """Move the request to `status`; with only_from, only from those (compare-and-set)."""
        statement = update(DataSubjectRequest).where(DataSubjectRequest.id == request_id)
        if only_from is not None:
            statement = statement.where(DataSubjectRequest.status.in_(only_from))
        if status in ("complete", "cancelled"):
            values.setdefault("completed_at", func.now())
        result = await self.session.execute(
            statement.values(status=status, updated_at=func.now(), **values).returning(
                DataSubjectRequest.id
            )
        )
        return result.first() is not None

    async def step_started(self, request_id: uuid.UUID, step: str) -> None:
        await self.session.execute(
            update(DataSubjectRequestStep)
            .where(
                DataSubjectRequestStep.request_id == request_id, DataSubjectRequestStep.step == step
            )
            .values(
                status="running",
                attempts=DataSubjectRequestStep.attempts + 1,
                started_at=func.coalesce(DataSubjectRequestStep.started_at, func.clock_timestamp()),
            )
        )

    async def step_finished(
        self,
        request_id: uuid.UUID,
        step: str,
        status: str,
        detail: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status, "last_error": error}
        if status in ("done", "skipped"):
            # clock_timestamp: now() would be the start of the transaction doing the step's work.
            values["finished_at"] = func.clock_timestamp()
        if detail is not None:
            values["detail"] = detail
        await self.session.execute(
            update(DataSubjectRequestStep)
            .where(
                DataSubjectRequestStep.request_id == request_id, DataSubjectRequestStep.step == step
            )
            .values(**values)
        )

    async def reset_steps_from(self, request_id: uuid.UUID, position: int) -> None:
        """A retry from an earlier step runs it and every later step again."""
        await self.session.execute(
            update(DataSubjectRequestStep)
            .where(
                DataSubjectRequestStep.request_id == request_id,
                DataSubjectRequestStep.position >= position,
            )
            .values(status="pending", finished_at=None)
        )

    async def done_steps(self, request_id: uuid.UUID) -> list[str]:
        rows = await self.session.scalars(
            select(DataSubjectRequestStep.step).where(
                DataSubjectRequestStep.request_id == request_id,
                DataSubjectRequestStep.status.in_(("done", "skipped")),
            )
        )
        return list(rows)

    async def issue_download_token(
        self, request_id: uuid.UUID, token_hash: str, expires_at: datetime
    ) -> None:
        """Each status call shows a fresh link (only hashes are kept, so none can be shown
        twice); the newest few stay valid, older ones are dropped."""
        self.session.add(
            ExportDownloadToken(token_hash=token_hash, request_id=request_id, expires_at=expires_at)
        )
        await self.session.flush()
        await self.session.execute(
            text(
                "DELETE FROM export_download_tokens WHERE request_id = :rid AND token_hash NOT IN"
                " (SELECT token_hash FROM export_download_tokens WHERE request_id = :rid"
                " ORDER BY created_at DESC, token_hash LIMIT :keep)"
            ),
            {"rid": request_id, "keep": LIVE_LINKS},
        )

    async def download_token(
        self, token_hash: str
    ) -> tuple[ExportDownloadToken, DataSubjectRequest] | None:
        """The token and the export it unlocks (the caller checks expiry); marks it used."""
        token = await self.session.get(ExportDownloadToken, token_hash)
        if token is None:
            return None
        request = await self.get(token.request_id)
        if request is None:
            return None
        token.last_used_at = datetime.now(UTC)
        return token, request

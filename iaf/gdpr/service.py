"""What the user and compliance routes share: creating requests, starting and waking their
workflows, and presenting a request (with a fresh download link when its archive is ready)."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from iaf import workflow_calls
from iaf.db.models import DataSubjectRequest, DataSubjectRequestStep, User
from iaf.db.repositories.gdpr_requests import RequestRepository
from iaf.security import hash_token
from iaf.settings import Settings
from iaf.workflow_calls import gdpr_workflow_id, subject_ref
from schemas.gdpr import ERASURE, RequestOut, StepOut

log = logging.getLogger(__name__)


def archive_path(settings: Settings, request: DataSubjectRequest) -> Path | None:
    """The archive's file while it is still served, else None."""
    if request.archive_name is None or request.archive_deleted_at is not None:
        return None
    if request.archive_expires_at is None or request.archive_expires_at <= datetime.now(UTC):
        return None
    path = settings.data_dir / "exports" / Path(request.archive_name).name
    return path if path.exists() else None


async def create_request(
    session: AsyncSession,
    settings: Settings,
    *,
    kind: str,
    subject: User,
    requester: User,
    via: str,
    reason: str,
    grace_days: float | None = None,
) -> tuple[DataSubjectRequest, bool]:
    """The subject's open request of this kind, or a new one; the caller commits, then starts it."""
    grace = None
    if kind == ERASURE:
        days = settings.erasure_grace_days if grace_days is None else grace_days
        grace = timedelta(days=days) if days > 0 else None
    return await RequestRepository(session).open_or_create(
        kind=kind,
        subject_user_id=subject.id,
        subject_ref=subject_ref(settings, subject.id),
        org_id=subject.org_id,
        requested_via=via,
        requested_by=requester.id,
        requested_by_ref=subject_ref(settings, requester.id),
        reason=reason,
        grace=grace,
    )


async def start_workflow(client: Client, settings: Settings, request: DataSubjectRequest) -> bool:
    """Start (or, for a retry, start again) the request's workflow; False if a run is still open."""
    return await workflow_calls.start_gdpr_request(
        client, settings, request.kind, request.id, request.subject_ref
    )


async def start_quietly(client: Client, settings: Settings, request: DataSubjectRequest) -> None:
    """The request is stored; if Temporal is away now, the next status call starts it (rule 5)."""
    try:
        await start_workflow(client, settings, request)
    except Exception as exc:
        log.warning(
            "%s workflow for %s not started now (%s)", request.kind, request.id, type(exc).__name__
        )


async def start_retry(client: Client, settings: Settings, request: DataSubjectRequest) -> bool:
    return await workflow_calls.start_gdpr_retry(
        client, settings, request.kind, request.id, request.subject_ref
    )


async def wake_cancelled(client: Client, request: DataSubjectRequest) -> None:
    await workflow_calls.wake_cancelled_gdpr_request(client, request.kind, request.id)


def step_out(step: DataSubjectRequestStep) -> StepOut:
    return StepOut(
        step=step.step,
        status=step.status,
        attempts=step.attempts,
        last_error=step.last_error,
        detail=step.detail or {},
        started_at=step.started_at,
        finished_at=step.finished_at,
    )


async def present(
    session: AsyncSession, settings: Settings, request: DataSubjectRequest, *, with_link: bool
) -> RequestOut:
    """The request as clients see it; a ready export gets a fresh single-purpose download link."""
    steps = (await RequestRepository(session).steps([request.id]))[request.id]
    path = archive_path(settings, request) if request.status == "complete" else None
    url = None
    if path is not None and with_link and request.archive_expires_at is not None:
        raw = secrets.token_urlsafe(32)
        await RequestRepository(session).issue_download_token(
            request.id, hash_token(raw), request.archive_expires_at
        )
        await session.commit()
        url = f"{settings.public_base_url.rstrip('/')}/api/user/data-export/download/{raw}"
    return RequestOut(
        id=request.id,
        kind=request.kind,
        status=request.status,
        subject_user_id=request.subject_user_id,
        subject_ref=request.subject_ref,
        requested_via=request.requested_via,
        reason=request.reason,
        failed_step=request.failed_step,
        created_at=request.created_at,
        due_at=request.due_at,
        grace_until=request.grace_until,
        completed_at=request.completed_at,
        workflow_id=gdpr_workflow_id(request.kind, request.id),
        steps=[step_out(s) for s in steps],
        archive_bytes=request.archive_bytes,
        archive_expires_at=request.archive_expires_at,
        archive_available=path is not None,
        download_url=url,
        verification=request.verification,
    )

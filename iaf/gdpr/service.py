"""What the user and compliance routes share: creating requests, starting and waking their
workflows, and presenting a request (with a fresh download link when its archive is ready)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from iaf.db.models import DataSubjectRequest, DataSubjectRequestStep, User
from iaf.db.repositories.gdpr import RequestRepository
from iaf.gdpr.steps import ERASURE, workflow_id
from iaf.schemas.gdpr import GdprWorkflowInput, RequestOut, StepOut
from iaf.search_attributes import KIND, REQUEST_ID, SUBJECT_REF
from iaf.security import hash_token, pseudonym
from iaf.settings import Settings

log = logging.getLogger(__name__)
RPC_TIMEOUT = timedelta(seconds=5)


def subject_ref(settings: Settings, user_id: uuid.UUID | str) -> str:
    return pseudonym(settings.secret("pseudonym_secret"), user_id)


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
    from iaf.workflows.data_export import DataExport
    from iaf.workflows.erasure import Erasure

    run = Erasure.run if request.kind == ERASURE else DataExport.run
    try:
        await client.start_workflow(
            run,
            GdprWorkflowInput(request_id=str(request.id)),
            id=workflow_id(request.kind, str(request.id)),
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(REQUEST_ID, str(request.id)),
                    SearchAttributePair(KIND, request.kind),
                    SearchAttributePair(SUBJECT_REF, request.subject_ref),
                ]
            ),
            rpc_timeout=RPC_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


async def start_quietly(client: Client, settings: Settings, request: DataSubjectRequest) -> None:
    """The request is stored; if Temporal is away now, the next status call starts it (rule 5)."""
    try:
        await start_workflow(client, settings, request)
    except Exception as exc:
        log.warning(
            "%s workflow for %s not started now (%s)", request.kind, request.id, type(exc).__name__
        )


async def start_retry(client: Client, settings: Settings, request: DataSubjectRequest) -> bool:
    """The failed run may still be closing (it records the failure, then fails): wait for it."""
    for _ in range(20):
        if await start_workflow(client, settings, request):
            return True
        await asyncio.sleep(0.25)
    return False


async def wake_cancelled(client: Client, request: DataSubjectRequest) -> None:
    """PostgreSQL already holds the cancellation; this ends the grace timer (or export) now."""
    handle = client.get_workflow_handle(workflow_id(request.kind, str(request.id)))
    try:
        if request.kind == ERASURE:
            await handle.signal("cancel", rpc_timeout=RPC_TIMEOUT)
        else:
            await handle.cancel(rpc_timeout=RPC_TIMEOUT)
    except Exception as exc:
        log.info(
            "cancel of %s not delivered (%s); the workflow reads it from the database",
            request.id,
            type(exc).__name__,
        )


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
        workflow_id=workflow_id(request.kind, str(request.id)),
        steps=[step_out(s) for s in steps],
        archive_bytes=request.archive_bytes,
        archive_expires_at=request.archive_expires_at,
        archive_available=path is not None,
        download_url=url,
        verification=request.verification,
    )

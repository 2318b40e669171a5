"""What the user and compliance routes do with GDPR requests: create them (alone or in a
batch), start, retry and cancel their workflows, and present a request (with a fresh download
link when its archive is ready). The routes check who may ask; this module does the asking."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from iaf import workflow_calls
from iaf.db.models import DataSubjectRequest, User
from iaf.db.repositories.gdpr_requests import RequestRepository
from iaf.db.repositories.users import UserRepository
from iaf.errors import ApiError
from iaf.security import hash_token
from iaf.settings import Settings
from iaf.workflow_calls import gdpr_workflow_id, subject_ref
from schemas.gdpr import (
    ERASURE,
    EXPORT,
    OPEN_STATUSES,
    BatchCreate,
    BatchItem,
    RequestOut,
    StepOut,
    SubjectIn,
    steps_for,
)

log = logging.getLogger(__name__)


def remove_archives(settings: Settings, names: list[str]) -> None:
    """Files of archives withdrawn in a committed transaction (StaleArchiveRepository)."""
    for name in names:
        (settings.data_dir / "exports" / Path(name).name).unlink(missing_ok=True)


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
        client, settings, request.kind, request.id, request.subject_ref, request.due_at
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
        client, settings, request.kind, request.id, request.subject_ref, request.due_at
    )


async def wake_cancelled(client: Client, request: DataSubjectRequest) -> None:
    await workflow_calls.wake_cancelled_gdpr_request(client, request.kind, request.id)


def _export_reusable(settings: Settings, request: DataSubjectRequest | None) -> bool:
    """An export under way, or a finished one whose archive is still served, answers a new
    ask; a failed one does not (it is started again)."""
    if request is None:
        return False
    if request.status in OPEN_STATUSES and request.status != "error":
        return True
    return request.status == "complete" and archive_path(settings, request) is not None


async def request_export(
    session: AsyncSession, settings: Settings, client: Client, user: User
) -> tuple[DataSubjectRequest, bool]:
    """The subject's own export: the one open or still downloadable, else a new one (True).
    A failed export is run again (the open-request index counts it as open, so "a new one" is
    the same request with a new workflow run: its step attempts keep counting)."""
    requests = RequestRepository(session)
    if await requests.erasure_underway(user.id):
        raise ApiError(409, "erasure_in_progress", "the account is being erased; no export now")
    latest = await requests.latest_for(EXPORT, user.id)
    created = False
    if _export_reusable(settings, latest):
        assert latest is not None
        request = latest
    elif latest is not None and latest.status == "error" and await requests.restart(latest.id):
        await session.commit()
        refreshed = await requests.get(latest.id)
        assert refreshed is not None
        request, created = refreshed, True
    else:
        request, created = await create_request(
            session,
            settings,
            kind=EXPORT,
            subject=user,
            requester=user,
            via="self",
            reason="self-service",
        )
        await session.commit()
    if request.status == "pending":
        await start_quietly(client, settings, request)
    return request, created


async def submit_batch(
    session: AsyncSession, settings: Settings, client: Client, officer: User, batch: BatchCreate
) -> tuple[list[BatchItem], bool]:
    """A compliance officer's batch, one request per subject of the officer's organisation (an
    open request of the same kind is returned, not doubled); True when any was created."""
    if batch.grace_days is not None and batch.kind != ERASURE:
        raise ApiError(422, "invalid_request", "grace_days applies to erasure requests only")
    outcomes: list[tuple[int, str, DataSubjectRequest | None]] = []
    for index, subject_in in enumerate(batch.subjects):
        subject = await _subject_in_org(session, officer, subject_in)
        if subject is None:
            outcomes.append((index, "not_found", None))
            continue
        if batch.kind == EXPORT and await RequestRepository(session).erasure_underway(subject.id):
            # Frozen or being erased: an archive now would copy what the erasure removes.
            outcomes.append((index, "erasure_in_progress", None))
            continue
        stored, created = await create_request(
            session,
            settings,
            kind=batch.kind,
            subject=subject,
            requester=officer,
            via="compliance",
            reason=batch.reason,
            grace_days=batch.grace_days,
        )
        outcomes.append((index, "created" if created else "existing", stored))
    await session.commit()
    items = []
    for index, outcome, found in outcomes:
        if found is not None and outcome == "created":
            await start_quietly(client, settings, found)
        out = await present(session, settings, found, with_link=False) if found else None
        items.append(BatchItem(index=index, outcome=outcome, request=out))
    return items, any(outcome == "created" for _, outcome, _ in outcomes)


async def _subject_in_org(session: AsyncSession, officer: User, subject: SubjectIn) -> User | None:
    """Only people of the officer's organisation; anyone else is indistinguishable from unknown."""
    users = UserRepository(session)
    found = (
        await users.get(subject.user_id)
        if subject.user_id
        else await users.get_by_email(str(subject.email))
    )
    if found is None or found.org_id != officer.org_id:
        return None
    return found


def _retry_position(request: DataSubjectRequest, from_step: str | None, done: list[str]) -> int:
    steps = steps_for(request.kind)
    failed = request.failed_step or next((s for s in steps if s not in done), steps[-1])
    target = from_step or failed
    if target not in steps or target == "grace":
        raise ApiError(
            422,
            "invalid_step",
            f"from_step must be one of {', '.join(s for s in steps if s != 'grace')}",
        )
    if steps.index(target) > steps.index(failed):
        raise ApiError(422, "invalid_step", f"cannot skip the failed step {failed}")
    return steps.index(target)


async def retry(
    session: AsyncSession,
    settings: Settings,
    client: Client,
    request: DataSubjectRequest,
    from_step: str | None,
) -> DataSubjectRequest:
    """Resume a failed request from its failed step (or an earlier one): done steps are skipped.
    When no new run starts, the request is put back as it was."""
    if request.status != "error":
        raise ApiError(
            409, "not_failed", f"only failed requests can be retried (status: {request.status})"
        )
    requests = RequestRepository(session)
    position = _retry_position(request, from_step, await requests.done_steps(request.id))
    failed_step = request.failed_step
    await requests.reset_steps_from(request.id, position)
    await requests.set_status(request.id, "in_progress", only_from=("error",), failed_step=None)
    await session.commit()
    try:
        started: bool | None = await start_retry(client, settings, request)
    except Exception as exc:  # Temporal unreachable: nothing started, so nothing changes
        log.warning("retry of %s not started (%s)", request.id, type(exc).__name__)
        started = None
    if not started:
        await requests.set_status(
            request.id, "error", only_from=("in_progress",), failed_step=failed_step
        )
        await session.commit()
        if started is None:
            raise ApiError(
                503,
                "temporal_unavailable",
                "the workflow service is unreachable; the request is unchanged, retry later",
                headers={"Retry-After": "30"},
            )
        raise ApiError(
            409, "still_running", "the previous run has not finished yet; try again shortly"
        )
    refreshed = await requests.get(request.id)
    assert refreshed is not None
    return refreshed


async def cancel(
    session: AsyncSession, client: Client, request: DataSubjectRequest, only_from: tuple[str, ...]
) -> DataSubjectRequest | None:
    """Cancel the request if its status is one of `only_from` (else None) and wake its
    workflow; a cancelled erasure's grace step is marked skipped."""
    requests = RequestRepository(session)
    if not await requests.set_status(request.id, "cancelled", only_from=only_from):
        return None
    if request.kind == ERASURE:
        await requests.step_finished(request.id, "grace", "skipped")
    await session.commit()
    await wake_cancelled(client, request)
    return await requests.get(request.id)


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
        steps=[StepOut.model_validate(s, from_attributes=True) for s in steps],
        archive_bytes=request.archive_bytes,
        archive_expires_at=request.archive_expires_at,
        archive_available=path is not None,
        download_url=url,
        verification=request.verification,
    )

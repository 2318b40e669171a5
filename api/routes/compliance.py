"""Data teams (role compliance): batch export/erasure requests for subjects of their organisation,
follow them, retry a failed one from its failed step, cancel, fetch receipts and archives."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse

from api.deps import CurrentUser, SessionDep, StateDep, require_role
from iaf.db.models import DataSubjectRequest, User
from iaf.db.repositories.erasure_audit import AuditRepository
from iaf.db.repositories.gdpr_requests import RequestRepository
from iaf.db.repositories.users import UserRepository
from iaf.errors import ApiError
from iaf.gdpr import receipt, service
from schemas.gdpr import (
    ERASURE,
    EXPORT,
    BatchCreate,
    BatchItem,
    BatchOut,
    Kind,
    ReceiptOut,
    RequestOut,
    RetryRequest,
    Status,
    SubjectIn,
    steps_for,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/compliance", tags=["compliance"])


def _compliance(user: User) -> User:
    require_role(user, "compliance")
    return user


async def _subject(session: SessionDep, officer: User, subject: SubjectIn) -> User | None:
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


async def _request(session: SessionDep, officer: User, request_id: uuid.UUID) -> DataSubjectRequest:
    request = await RequestRepository(session).get(request_id)
    if request is None or request.org_id != officer.org_id:
        raise ApiError(404, "request_not_found", "request not found")
    return request


@router.post("/requests", status_code=201)
async def submit(
    body: BatchCreate, user: CurrentUser, session: SessionDep, state: StateDep, response: Response
) -> BatchOut:
    """One request per subject; an open request of the same kind is returned, not doubled."""
    officer = _compliance(user)
    if body.grace_days is not None and body.kind != ERASURE:
        raise ApiError(422, "invalid_request", "grace_days applies to erasure requests only")
    outcomes: list[tuple[int, str, DataSubjectRequest | None]] = []
    for index, subject_in in enumerate(body.subjects):
        subject = await _subject(session, officer, subject_in)
        if subject is None:
            outcomes.append((index, "not_found", None))
            continue
        if body.kind == EXPORT and await RequestRepository(session).erasure_underway(subject.id):
            # Frozen or being erased: an archive now would copy what the erasure removes.
            outcomes.append((index, "erasure_in_progress", None))
            continue
        created_request, created = await service.create_request(
            session,
            state.settings,
            kind=body.kind,
            subject=subject,
            requester=officer,
            via="compliance",
            reason=body.reason,
            grace_days=body.grace_days,
        )
        outcomes.append((index, "created" if created else "existing", created_request))
    await session.commit()
    items = []
    for index, outcome, request in outcomes:
        if request is not None and outcome == "created":
            await service.start_quietly(state.temporal, state.settings, request)
        out = (
            await service.present(session, state.settings, request, with_link=False)
            if request
            else None
        )
        items.append(BatchItem(index=index, outcome=outcome, request=out))
    if not any(outcome == "created" for _, outcome, _ in outcomes):
        response.status_code = 200
    return BatchOut(items=items)


@router.get("/requests")
async def list_requests(
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    kind: Kind | None = None,
    status: Status | None = None,
    subject_user_id: uuid.UUID | None = None,
    before: datetime | None = None,
    limit: int = Query(default=50, ge=1, le=200),
) -> dict[str, list[RequestOut]]:
    officer = _compliance(user)
    rows = await RequestRepository(session).search(
        officer.org_id,
        kind=kind,
        status=status,
        subject_user_id=subject_user_id,
        before=before,
        limit=limit,
    )
    return {
        "items": [await service.present(session, state.settings, r, with_link=False) for r in rows]
    }


@router.get("/requests/{request_id}")
async def get_request(
    request_id: uuid.UUID, user: CurrentUser, session: SessionDep, state: StateDep
) -> RequestOut:
    request = await _request(session, _compliance(user), request_id)
    if request.status == "pending":
        await service.start_quietly(state.temporal, state.settings, request)
    return await service.present(session, state.settings, request, with_link=False)


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


@router.post("/requests/{request_id}/retry", status_code=202)
async def retry(
    request_id: uuid.UUID,
    body: RetryRequest,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
) -> RequestOut:
    """Resume a failed request from its failed step (or an earlier one): done steps are skipped."""
    request = await _request(session, _compliance(user), request_id)
    if request.status != "error":
        raise ApiError(
            409, "not_failed", f"only failed requests can be retried (status: {request.status})"
        )
    requests = RequestRepository(session)
    position = _retry_position(request, body.from_step, await requests.done_steps(request.id))
    failed_step = request.failed_step
    await requests.reset_steps_from(request.id, position)
    await requests.set_status(request.id, "in_progress", only_from=("error",), failed_step=None)
    await session.commit()
    try:
        started = await service.start_retry(state.temporal, state.settings, request)
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
    return await service.present(session, state.settings, refreshed, with_link=False)


@router.post("/requests/{request_id}/cancel")
async def cancel(
    request_id: uuid.UUID, user: CurrentUser, session: SessionDep, state: StateDep
) -> RequestOut:
    """Erasures can be cancelled only before they start; exports at any time before completion."""
    request = await _request(session, _compliance(user), request_id)
    cancellable = (
        ("pending", "in_grace") if request.kind == ERASURE else ("pending", "in_progress", "error")
    )
    requests = RequestRepository(session)
    if not await requests.set_status(request.id, "cancelled", only_from=cancellable):
        raise ApiError(
            409, "not_cancellable", f"a request in status {request.status} cannot be cancelled"
        )
    if request.kind == ERASURE:
        await requests.step_finished(request.id, "grace", "skipped")
    await session.commit()
    await service.wake_cancelled(state.temporal, request)
    refreshed = await requests.get(request.id)
    assert refreshed is not None
    return await service.present(session, state.settings, refreshed, with_link=False)


@router.get("/requests/{request_id}/receipt")
async def get_receipt(
    request_id: uuid.UUID, user: CurrentUser, session: SessionDep, state: StateDep
) -> ReceiptOut:
    request = await _request(session, _compliance(user), request_id)
    audit = await AuditRepository(session).get(request.id)
    if audit is None or audit.receipt is None or audit.receipt_signature is None:
        raise ApiError(
            404, "no_receipt", "no receipt yet: the erasure has not reached its verification"
        )
    secret = state.settings.secret("erasure_receipt_secret")
    return ReceiptOut(
        request_id=request.id,
        receipt=audit.receipt,
        signature=audit.receipt_signature,
        valid=receipt.verify(secret, audit.receipt, audit.receipt_signature),
    )


@router.get("/requests/{request_id}/archive", response_model=None)
async def get_archive(
    request_id: uuid.UUID, user: CurrentUser, session: SessionDep, state: StateDep
) -> FileResponse:
    request = await _request(session, _compliance(user), request_id)
    path = service.archive_path(state.settings, request)
    if request.status != "complete" or path is None:
        raise ApiError(404, "no_archive", "no archive available for this request")
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"export-{request.id}.zip",
        headers={"Cache-Control": "no-store"},
    )

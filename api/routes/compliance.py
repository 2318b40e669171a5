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
from iaf.errors import ApiError
from iaf.gdpr import receipt, service
from schemas.gdpr import (
    ERASURE,
    BatchCreate,
    BatchOut,
    Kind,
    ReceiptOut,
    RequestOut,
    RetryRequest,
    Status,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/compliance", tags=["compliance"])


def _compliance(user: User) -> User:
    require_role(user, "compliance")
    return user


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
    items, created = await service.submit_batch(
        session, state.settings, state.temporal, officer, body
    )
    if not created:
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
    resumed = await service.retry(session, state.settings, state.temporal, request, body.from_step)
    return await service.present(session, state.settings, resumed, with_link=False)


@router.post("/requests/{request_id}/cancel")
async def cancel(
    request_id: uuid.UUID, user: CurrentUser, session: SessionDep, state: StateDep
) -> RequestOut:
    """Erasures can be cancelled only before they start; exports at any time before completion."""
    request = await _request(session, _compliance(user), request_id)
    cancellable = (
        ("pending", "in_grace") if request.kind == ERASURE else ("pending", "in_progress", "error")
    )
    cancelled = await service.cancel(session, state.temporal, request, cancellable)
    if cancelled is None:
        raise ApiError(
            409, "not_cancellable", f"a request in status {request.status} cannot be cancelled"
        )
    return await service.present(session, state.settings, cancelled, with_link=False)


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

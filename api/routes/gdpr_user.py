"""The subject's own GDPR rights: export (Art. 15/20), deletion (Art. 17), consents (Art. 7)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse

from api.deps import CurrentUser, SessionDep, StateDep
from iaf.db.models import DataSubjectRequest, User
from iaf.db.repositories.consents import PURPOSES, ConsentRepository
from iaf.db.repositories.gdpr_requests import RequestRepository
from iaf.errors import ApiError
from iaf.gdpr import service
from iaf.security import hash_token, password_matches
from schemas.gdpr import (
    ERASURE,
    EXPORT,
    ConsentChangeOut,
    ConsentOut,
    ConsentsOut,
    ConsentsUpdate,
    DeleteAccountRequest,
    RequestOut,
)

router = APIRouter(prefix="/api/user", tags=["gdpr"])


@router.get("/data-export")
async def request_export(
    user: CurrentUser, session: SessionDep, state: StateDep, response: Response
) -> RequestOut:
    """Start an export, or return the one already open or still downloadable (202 when new)."""
    request, created = await service.request_export(session, state.settings, state.temporal, user)
    response.status_code = 202 if created else 200
    return await service.present(session, state.settings, request, with_link=True)


@router.get("/data-export/status")
async def export_status(user: CurrentUser, session: SessionDep, state: StateDep) -> RequestOut:
    request = await RequestRepository(session).latest_for(EXPORT, user.id)
    if request is None:
        raise ApiError(
            404, "no_export", "no export was requested; GET /api/user/data-export starts one"
        )
    if request.status == "pending":
        await service.start_quietly(state.temporal, state.settings, request)
    return await service.present(session, state.settings, request, with_link=True)


@router.get("/data-export/download/{token}", response_model=None)
async def download_export(token: str, session: SessionDep, state: StateDep) -> FileResponse:
    """The link is the credential: random, single-purpose, stored hashed, expiring."""
    found = await RequestRepository(session).download_token(hash_token(token))
    if found is None:
        raise ApiError(404, "link_not_found", "unknown download link")
    link, request = found
    path = service.archive_path(state.settings, request)
    if link.expires_at <= datetime.now(UTC) or path is None:
        raise ApiError(410, "link_expired", "this download link has expired; request a new export")
    await session.commit()
    filename = f"iafactory-export-{request.created_at:%Y%m%d}-{str(request.id)[:8]}.zip"
    return FileResponse(
        path, media_type="application/zip", filename=filename, headers={"Cache-Control": "no-store"}
    )


async def _open_erasure(session: SessionDep, user: User) -> DataSubjectRequest:
    request = await RequestRepository(session).open_for(ERASURE, user.id)
    if request is None:
        raise ApiError(404, "no_deletion_pending", "no account deletion is pending")
    return request


@router.post("/delete-account", status_code=202)
async def delete_account(
    body: DeleteAccountRequest,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> RequestOut:
    """Schedule the erasure after a grace period the user can cancel; the password confirms it."""
    # argon2 off the event loop, and counted: each attempt costs 64 MiB and tens of ms.
    settings = state.settings
    await state.limiter.hit(f"password-check:{user.id}", settings.login_attempts_per_minute, 60)
    if not await password_matches(user.password_hash, body.password):
        raise ApiError(403, "invalid_password", "the password does not match")
    request, created = await service.create_request(
        session,
        state.settings,
        kind=ERASURE,
        subject=user,
        requester=user,
        via="self",
        reason="self-service",
    )
    await session.commit()
    if created:
        await service.start_quietly(state.temporal, state.settings, request)
    response.status_code = 202 if created else 200
    return await service.present(session, state.settings, request, with_link=False)


@router.get("/delete-account")
async def deletion_status(user: CurrentUser, session: SessionDep, state: StateDep) -> RequestOut:
    return await service.present(
        session, state.settings, await _open_erasure(session, user), with_link=False
    )


@router.post("/delete-account/cancel")
async def cancel_deletion(user: CurrentUser, session: SessionDep, state: StateDep) -> RequestOut:
    request = await _open_erasure(session, user)
    cancelled = await service.cancel(session, state.temporal, request, ("pending", "in_grace"))
    if cancelled is None:
        raise ApiError(
            409,
            "erasure_started",
            "the grace period is over; the erasure can no longer be cancelled",
        )
    return await service.present(session, state.settings, cancelled, with_link=False)


async def _consents(session: SessionDep, user: User) -> ConsentsOut:
    consents = ConsentRepository(session)
    current = await consents.current(user.id)
    items = [
        ConsentOut(purpose=p, granted=current[p].granted, updated_at=current[p].updated_at)
        if p in current
        else ConsentOut(purpose=p, granted=False)
        for p in PURPOSES
    ]
    history = [
        ConsentChangeOut(purpose=c.purpose, granted=c.granted, changed_at=c.changed_at)
        for c in await consents.history(user.id)
    ]
    return ConsentsOut(items=items, history=history)


@router.get("/consents")
async def get_consents(user: CurrentUser, session: SessionDep) -> ConsentsOut:
    """Every optional purpose: not granted until the user says so (Art. 7, privacy by default)."""
    return await _consents(session, user)


@router.put("/consents")
async def put_consents(body: ConsentsUpdate, user: CurrentUser, session: SessionDep) -> ConsentsOut:
    await ConsentRepository(session).set(user.id, {str(k): v for k, v in body.consents.items()})
    await session.commit()
    return await _consents(session, user)

"""Invitations: room admins invite by e-mail; the link's holder views, signs up and accepts.

The rules live in iaf.invitations.service; this module checks who may call, counts the rate
limits and shapes the answer (JSON, or the landing page for a browser).
"""

from __future__ import annotations

import secrets
import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from api.deps import AppState, CurrentUser, SessionDep, StateDep, client_ip, optional_user
from api.ratelimit import DAY_SECONDS, per_address
from iaf.accounts.service import token_response
from iaf.db.models import Invitation, User
from iaf.db.repositories.invitations import InvitationView
from iaf.invitations.service import Accepted, InvitationService, not_found
from iaf.mail.render import landing_page
from iaf.rooms.service import ensure_room_admin, ensure_writable, room_for_member
from schemas.auth import UserOut
from schemas.invitations import (
    AcceptRequest,
    AcceptResponse,
    InvitationOut,
    InvitationPublic,
    InviteRequest,
)

router = APIRouter(prefix="/api/chat", tags=["invitations"])


def _service(state: AppState, session: SessionDep) -> InvitationService:
    return InvitationService(session, state.settings, state.temporal)


# ---- room owners and admins -----------------------------------------------------------------


@router.post("/rooms/{room_id}/invite", status_code=201)
async def invite(
    room_id: uuid.UUID,
    body: InviteRequest,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> InvitationOut:
    """201 with a new invitation, or 200 with the address's invitation still pending."""
    room, role = await room_for_member(session, room_id, user)
    ensure_room_admin(role)
    ensure_writable(room)
    service = _service(state, session)
    minutes = await service.check_invite(room, body.email, body.expires_in_minutes)
    # Joins the request's transaction (its connection is already held): counts invites made.
    await state.limiter.hit(
        f"invite:{user.id}", state.settings.invitations_per_hour, 3600, response, session
    )
    daily = state.settings.invitations_per_day
    await state.limiter.hit(f"invite-day:{user.id}", daily, DAY_SECONDS, response, session)
    invitation, created = await service.invite(room.id, user.id, body.email, minutes)
    if not created:
        response.status_code = 200
    return InvitationOut.model_validate(invitation, from_attributes=True)


async def _managed(
    state: AppState, session: SessionDep, room_id: uuid.UUID, invitation_id: uuid.UUID, user: User
) -> tuple[InvitationService, Invitation]:
    _, role = await room_for_member(session, room_id, user)
    ensure_room_admin(role)
    service = _service(state, session)
    return service, await service.in_room(room_id, invitation_id)


@router.get("/rooms/{room_id}/invitations")
async def list_invitations(
    room_id: uuid.UUID, user: CurrentUser, session: SessionDep, state: StateDep
) -> dict[str, list[InvitationOut]]:
    _, role = await room_for_member(session, room_id, user)
    ensure_room_admin(role)
    rows = await _service(state, session).list_for_room(room_id)
    return {"items": [InvitationOut.model_validate(i, from_attributes=True) for i in rows]}


@router.post("/rooms/{room_id}/invitations/{invitation_id}/resend", status_code=202)
async def resend_invitation(
    room_id: uuid.UUID,
    invitation_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> InvitationOut:
    """Mails the same link again (the token is derived, not rotated)."""
    service, invitation = await _managed(state, session, room_id, invitation_id, user)
    service.check_resend(invitation)
    limit = state.settings.invitation_resends_per_hour
    await state.limiter.hit(f"invite-resend:{invitation.id}", limit, 3600, response, session)
    await service.resend(invitation)
    return InvitationOut.model_validate(invitation, from_attributes=True)


@router.delete("/rooms/{room_id}/invitations/{invitation_id}")
async def revoke_invitation(
    room_id: uuid.UUID,
    invitation_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
) -> InvitationOut:
    """Idempotent; the link stops working at once, the workflow is told to stop."""
    service, invitation = await _managed(state, session, room_id, invitation_id, user)
    revoked = await service.revoke(invitation)
    return InvitationOut.model_validate(revoked, from_attributes=True)


# ---- the link's holder --------------------------------------------------------------------


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    html_at, json_at = accept.find("text/html"), accept.find("application/json")
    return html_at >= 0 and (json_at < 0 or html_at < json_at)


def html_page(view: InvitationView | None) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    if view is None:
        status, body = (
            404,
            landing_page(status="missing", inviter_name=None, room_name=None, nonce=nonce),
        )
    else:
        current = view.invitation.current_status
        status = 410 if current in ("expired", "revoked") else 200
        body = landing_page(
            status=current, inviter_name=view.inviter_name, room_name=view.room_name, nonce=nonce
        )
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    headers = {
        "Content-Security-Policy": csp,
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return HTMLResponse(body, status_code=status, headers=headers)


@router.get("/invitations/{token}", response_model=None)
async def get_invitation(
    token: str, request: Request, session: SessionDep, state: StateDep
) -> InvitationPublic | HTMLResponse:
    """JSON for frontends; the "You're invited" page for browsers (Accept: text/html)."""
    await state.limiter.hit(
        f"invite-lookup:{client_ip(request)}", state.settings.invitation_lookups_per_minute, 60
    )
    view = await _service(state, session).view(token)
    if wants_html(request):
        return html_page(view)
    if view is None:
        raise not_found()
    return InvitationPublic.model_validate(view, from_attributes=True)


@router.post("/invitations/{token}/accept")
async def accept_invitation(
    token: str,
    request: Request,
    session: SessionDep,
    state: StateDep,
    body: AcceptRequest | None = None,
) -> AcceptResponse:
    """Join the room: signed in with the invited address, or sign up with {name, password}.

    A new account gets its own organisation, not the inviter's (see iaf.invitations.service).
    """
    settings = state.settings
    await state.limiter.hit(
        f"invite-accept:{client_ip(request)}", settings.invitation_accepts_per_minute, 60
    )
    service = _service(state, session)
    view = await service.view(token)
    if view is None:
        raise not_found()
    caller = await optional_user(request, state, session)

    async def count_login(bucket: str) -> None:
        # Per account and client address, like /api/auth/login: strangers cannot lock one out.
        bucket = per_address(bucket, client_ip(request))
        await state.limiter.hit(bucket, settings.login_attempts_per_minute, 60, None, session)

    return _accept_response(state, await service.accept(view, caller, body, count_login))


def _accept_response(state: AppState, accepted: Accepted) -> AcceptResponse:
    invitation, user = accepted.invitation, accepted.user
    if not accepted.with_token:
        return AcceptResponse(
            id=invitation.id, room_id=invitation.room_id, user=UserOut.model_validate(user)
        )
    issued = token_response(state.jwt_secret, state.settings, user)
    return AcceptResponse(
        id=invitation.id,
        room_id=invitation.room_id,
        user=issued.user,
        access_token=issued.access_token,
        expires_in=issued.expires_in,
    )

"""Invitations: room admins invite by e-mail; the link's holder views, signs up and accepts.

Tokens are looked up by SHA-256 in one indexed query whether they exist or not, so an
unknown token costs what a real one does. A new account created by accepting gets its own
organisation (see `accept_invitation`), joins only the invited room, and starts a referral.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import (
    AppState,
    CurrentUser,
    SessionDep,
    StateDep,
    authenticate,
    ensure_room_admin,
    ensure_writable,
    room_for_member,
)
from api.errors import ApiError
from api.routes.auth import client_ip, create_account, default_org_name, token_response
from api.routes.rooms import DIRECT_ROOM_MEMBERS
from iaf.db.models import Invitation, Room, User
from iaf.db.repositories.invitations import InvitationRepository, InvitationView
from iaf.db.repositories.ledger import LedgerRepository
from iaf.db.repositories.members import MemberRepository
from iaf.db.repositories.referrals import ReferralRepository
from iaf.db.repositories.room_events import EventRepository
from iaf.db.repositories.rooms import RoomRepository
from iaf.db.repositories.users import UserRepository
from iaf.mail.links import derive_token, new_salt, token_hash
from iaf.mail.render import landing_page
from iaf.security import hashed_password, password_matches
from iaf.workflow_calls import (
    invitation_started,
    notify_invitation,
    request_resend,
    start_invitation,
)
from schemas.auth import UserOut
from schemas.invitations import (
    AcceptRequest,
    AcceptResponse,
    InvitationOut,
    InvitationPublic,
    InviteRequest,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/chat", tags=["invitations"])


def effective_status(invitation: Invitation) -> str:
    """A pending invitation past its expiry is expired, even before its timer has fired."""
    if invitation.status == "pending" and invitation.expires_at <= datetime.now(UTC):
        return "expired"
    return invitation.status


def invitation_out(invitation: Invitation) -> InvitationOut:
    return InvitationOut(
        id=invitation.id,
        room_id=invitation.room_id,
        email=invitation.email,
        invited_by=invitation.invited_by,
        status=effective_status(invitation),
        expires_at=invitation.expires_at,
        created_at=invitation.created_at,
        closed_at=invitation.closed_at,
        accepted_user_id=invitation.accepted_user_id,
        invite_sent_at=invitation.invite_sent_at,
        reminder_sent_at=invitation.reminder_sent_at,
    )


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
    settings = state.settings
    room, role = await room_for_member(session, room_id, user)
    ensure_room_admin(role)
    ensure_writable(room)
    await _ensure_room_for_one_more(session, room)
    minutes = body.expires_in_minutes or settings.invitation_default_minutes
    if minutes > settings.invitation_max_minutes:
        raise ApiError(
            422,
            "invalid_expiry",
            f"expires_in_minutes must be 1 to {settings.invitation_max_minutes}",
        )
    invitee = await UserRepository(session).get_by_email(body.email)
    if invitee is not None and await RoomRepository(session).get_for_member(room.id, invitee.id):
        raise ApiError(409, "already_member", "this person is already a member of the room")
    # Joins the request's transaction (its connection is already held): counts invites made.
    await state.limiter.hit(
        f"invite:{user.id}", settings.invitations_per_hour, 3600, response, session
    )
    existing = await _live_pending(session, room.id, body.email)
    if existing is None:
        created = await _create(state, session, room.id, user.id, body.email, minutes)
        if created is not None:
            await session.commit()
            await _start_or_undo(state, session, created)
            return invitation_out(created)
        existing = await InvitationRepository(session).pending_for(room.id, body.email)
        if existing is None:
            raise ApiError(409, "conflict", "the invitation changed meanwhile; try again")
    await session.commit()
    await _ensure_started(state, existing)
    response.status_code = 200
    return invitation_out(existing)


async def _ensure_room_for_one_more(
    session: AsyncSession, room: Room, joining: uuid.UUID | None = None
) -> None:
    """A direct room holds at most two members (someone already in it may rejoin)."""
    if room.kind != "direct":
        return
    members = MemberRepository(session)
    if joining is not None and await members.role_of(room.id, joining) is not None:
        return
    if await members.count(room.id) >= DIRECT_ROOM_MEMBERS:
        raise ApiError(409, "direct_room_full", "a direct room has at most two members")


async def _create(
    state: AppState,
    session: AsyncSession,
    room_id: uuid.UUID,
    inviter_id: uuid.UUID,
    email: str,
    minutes: int,
) -> Invitation | None:
    """A new pending invitation; None when a concurrent request created one first."""
    salt = new_salt()
    token = derive_token(state.settings.secret("invitation_secret"), salt)
    expires_at = datetime.now(UTC) + timedelta(minutes=minutes)
    return await InvitationRepository(session).create(
        room_id, inviter_id, email, token_hash(token), salt, expires_at
    )


async def _live_pending(session: AsyncSession, room_id: uuid.UUID, email: str) -> Invitation | None:
    """The pending invitation, after closing one whose expiry passed before its timer fired."""
    invitations = InvitationRepository(session)
    existing = await invitations.pending_for(room_id, email)
    if existing is None or effective_status(existing) == "pending":
        return existing
    if await invitations.expire(existing.id):
        await EventRepository(session).append(room_id, "invitation.expired", _event(existing))
    return None


def _event(invitation: Invitation, **extra: str) -> dict[str, str]:
    return {
        "invitation_id": str(invitation.id),
        "room_id": str(invitation.room_id),
        "invited_by": str(invitation.invited_by),
        **extra,
    }


async def _start_or_undo(state: AppState, session: AsyncSession, invitation: Invitation) -> None:
    """Without its workflow nobody would mail or expire the invitation: undo it and say so."""
    try:
        await start_invitation(
            state.temporal, state.settings, invitation.id, invitation.room_id, invitation.invited_by
        )
    except Exception as exc:
        if isinstance(exc, TimeoutError) and await invitation_started(
            state.temporal, invitation.id, state.settings.temporal_start_timeout_seconds
        ):
            return  # the start was slow, not lost
        log.warning("invitation %s not started (%s); undone", invitation.id, type(exc).__name__)
        await InvitationRepository(session).delete(invitation.id)
        await session.commit()
        raise ApiError(
            503, "temporarily_unavailable", "invitations are unavailable right now; try again"
        ) from None


async def _ensure_started(state: AppState, invitation: Invitation) -> None:
    try:
        await start_invitation(
            state.temporal, state.settings, invitation.id, invitation.room_id, invitation.invited_by
        )
    except Exception as exc:
        log.warning("invitation %s: start check failed (%s)", invitation.id, type(exc).__name__)


async def _managed(
    session: AsyncSession, room_id: uuid.UUID, invitation_id: uuid.UUID, user: User
) -> Invitation:
    _, role = await room_for_member(session, room_id, user)
    ensure_room_admin(role)
    invitation = await InvitationRepository(session).in_room(room_id, invitation_id)
    if invitation is None:
        raise ApiError(404, "invitation_not_found", "invitation not found")
    return invitation


@router.get("/rooms/{room_id}/invitations")
async def list_invitations(
    room_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> dict[str, list[InvitationOut]]:
    _, role = await room_for_member(session, room_id, user)
    ensure_room_admin(role)
    rows = await InvitationRepository(session).list_for_room(room_id)
    return {"items": [invitation_out(i) for i in rows]}


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
    invitation = await _managed(session, room_id, invitation_id, user)
    if effective_status(invitation) != "pending":
        raise ApiError(
            409, "invitation_closed", f"the invitation is {effective_status(invitation)}"
        )
    limit = state.settings.invitation_resends_per_hour
    await state.limiter.hit(f"invite-resend:{invitation.id}", limit, 3600, response, session)
    seq = await InvitationRepository(session).request_resend(invitation.id)
    if seq is None:
        raise ApiError(409, "invitation_closed", "the invitation is no longer pending")
    await session.commit()
    try:
        await request_resend(state.temporal, invitation.id, seq)
    except Exception:
        raise ApiError(
            503, "temporarily_unavailable", "could not queue the e-mail; try again"
        ) from None
    return invitation_out(invitation)


@router.delete("/rooms/{room_id}/invitations/{invitation_id}")
async def revoke_invitation(
    room_id: uuid.UUID,
    invitation_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
) -> InvitationOut:
    """Idempotent; the link stops working at once, the workflow is told to stop."""
    invitation = await _managed(session, room_id, invitation_id, user)
    invitations = InvitationRepository(session)
    if invitation.status == "pending" and await invitations.revoke(invitation.id):
        await session.commit()
        await notify_invitation(state.temporal, invitation.id, "revoked")
        refreshed = await invitations.get(invitation.id)
        assert refreshed is not None
        invitation = refreshed
    elif invitation.status != "revoked":
        raise ApiError(409, "invitation_closed", f"the invitation is {invitation.status}")
    return invitation_out(invitation)


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
        current = effective_status(view.invitation)
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
    view = await InvitationRepository(session).view(token_hash=token_hash(token))
    if wants_html(request):
        return html_page(view)
    if view is None:
        raise ApiError(404, "invitation_not_found", "invitation not found")
    return InvitationPublic(
        id=view.invitation.id,
        room_name=view.room_name,
        inviter_name=view.inviter_name,
        status=effective_status(view.invitation),
        expires_at=view.invitation.expires_at,
    )


async def _optional_user(request: Request, state: AppState, session: AsyncSession) -> User | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "malformed Authorization header")
    return await authenticate(token.strip(), state, session)


@router.post("/invitations/{token}/accept")
async def accept_invitation(
    token: str,
    request: Request,
    session: SessionDep,
    state: StateDep,
    body: AcceptRequest | None = None,
) -> AcceptResponse:
    """Join the room: signed in with the invited address, or sign up with {name, password}.

    A new account gets its own organisation, not the inviter's: a guest sees the room it was
    invited to, never the host organisation's directory, org-wide knowledge or other rooms,
    and the host's org admins cannot manage an outsider's account. Room membership is what
    crosses organisations.
    """
    settings = state.settings
    await state.limiter.hit(
        f"invite-accept:{client_ip(request)}", settings.invitation_accepts_per_minute, 60
    )
    invitations = InvitationRepository(session)
    view = await invitations.view(token_hash=token_hash(token))
    if view is None:
        raise ApiError(404, "invitation_not_found", "invitation not found")
    caller = await _optional_user(request, state, session)
    invitation = view.invitation
    if invitation.status == "accepted":
        return await _accepted_again(state, session, invitation, caller, body)
    _ensure_open(invitation)
    if view.room_archived:
        raise ApiError(409, "room_archived", "the room is archived")
    user, created = await _invitee(state, session, invitation, caller, body)
    # Locked like every member change (rooms.py), and checked again under the lock, so a
    # concurrent archive or add cannot slip in; a refusal rolls back the new account too.
    room = await MemberRepository(session).lock_room(invitation.room_id)
    if room is None:
        raise ApiError(404, "invitation_not_found", "invitation not found")
    if room.archived_at is not None:
        raise ApiError(409, "room_archived", "the room is archived")
    await _ensure_room_for_one_more(session, room, user.id)
    if not await invitations.accept(invitation.id, user.id):
        await session.rollback()
        return await _lost_race(state, session, invitation.id, caller, body)
    await _join_room(session, invitation, user)
    if created:
        deadline = datetime.now(UTC) + timedelta(days=settings.referral_deadline_days)
        await ReferralRepository(session).create(
            invitation.invited_by,
            user.id,
            invitation.id,
            settings.referral_reward_credits,
            deadline,
        )
    await session.commit()
    await notify_invitation(state.temporal, invitation.id, "accepted")
    return _accept_response(state, invitation, user, with_token=created)


def _ensure_open(invitation: Invitation) -> None:
    status = effective_status(invitation)
    if status == "revoked":
        raise ApiError(410, "invitation_revoked", "this invitation was withdrawn")
    if status == "expired":
        raise ApiError(410, "invitation_expired", "this invitation has expired")


async def _invitee(
    state: AppState,
    session: AsyncSession,
    invitation: Invitation,
    caller: User | None,
    body: AcceptRequest | None,
) -> tuple[User, bool]:
    """The accepting user and whether this call created them."""
    if caller is not None:
        if caller.email.lower() != invitation.email.lower():
            raise ApiError(
                403, "wrong_account", "this invitation was sent to another e-mail address"
            )
        return caller, False
    if body is None:
        raise ApiError(
            401, "unauthorized", "sign in, or send {name, password} to create your account"
        )
    users = UserRepository(session)
    if await users.email_taken(invitation.email):
        raise _account_exists()
    password_hash = await hashed_password(body.password)
    name, email = body.name, invitation.email

    async def create() -> User:
        org = await users.create_org(default_org_name(name))
        return await users.create(org.id, email, name, password_hash, "org_admin")

    user = await create_account(session, email, create, taken=_account_exists)
    await LedgerRepository(session).grant_starting_credits(user.id, state.settings.starting_credits)
    return user, True


def _account_exists() -> ApiError:
    return ApiError(
        409, "account_exists", "an account with this e-mail exists: sign in, then accept"
    )


async def _join_room(session: AsyncSession, invitation: Invitation, user: User) -> None:
    """member.add for the room, and invitation.accepted so the inviter sees "B joined"."""
    events = EventRepository(session)
    if await MemberRepository(session).add(invitation.room_id, user.id, "member"):
        await events.append(
            invitation.room_id,
            "member.add",
            {"user_id": str(user.id), "role": "member", "invitation_id": str(invitation.id)},
        )
    await events.append(
        invitation.room_id, "invitation.accepted", _event(invitation, user_id=str(user.id))
    )


async def _lost_race(
    state: AppState,
    session: AsyncSession,
    invitation_id: uuid.UUID,
    caller: User | None,
    body: AcceptRequest | None,
) -> AcceptResponse:
    """The conditional accept found the row no longer pending: say what it became."""
    invitation = await InvitationRepository(session).get(invitation_id)
    if invitation is None:
        raise ApiError(404, "invitation_not_found", "invitation not found")
    if invitation.status == "accepted":
        return await _accepted_again(state, session, invitation, caller, body)
    _ensure_open(invitation)
    raise ApiError(410, "invitation_expired", "this invitation has expired")


async def _accepted_again(
    state: AppState,
    session: AsyncSession,
    invitation: Invitation,
    caller: User | None,
    body: AcceptRequest | None,
) -> AcceptResponse:
    """Idempotent for whoever accepted it (a retried sign-up proves itself with the password).

    Handing out a token for a password is a login: it counts against the same per-account
    limit (`login:{email}`) and only an active account gets one.
    """
    accepted_by = invitation.accepted_user_id
    if caller is not None and caller.id == accepted_by:
        return _accept_response(state, invitation, caller, with_token=False)
    if caller is None and body is not None and accepted_by is not None:
        settings = state.settings
        # In the request's session (it holds a connection already), committed at once so
        # that a wrong password counts too; nothing else is written before this point.
        await state.limiter.hit(
            f"login:{invitation.email.lower()}",
            settings.login_attempts_per_minute,
            60,
            None,
            session,
        )
        await session.commit()
        user = await UserRepository(session).get(accepted_by)
        same = user is not None and user.email.lower() == invitation.email.lower()
        valid = await password_matches(user.password_hash if user else None, body.password)
        if user is not None and same and valid and user.status == "active":
            return _accept_response(state, invitation, user, with_token=True)
    raise ApiError(409, "invitation_used", "this invitation has already been accepted")


def _accept_response(
    state: AppState, invitation: Invitation, user: User, with_token: bool
) -> AcceptResponse:
    if not with_token:
        return AcceptResponse(
            id=invitation.id, room_id=invitation.room_id, user=UserOut.model_validate(user)
        )
    issued = token_response(state, user)
    return AcceptResponse(
        id=invitation.id,
        room_id=invitation.room_id,
        user=issued.user,
        access_token=issued.access_token,
        expires_in=issued.expires_in,
    )

"""What the invitation routes do, between authorising the caller and answering.

An invitation row is only useful with its workflow (which mails, reminds and expires it): a new
row whose workflow cannot be started is undone, and an existing one is started again when
asked for. Accepting is a race against expiry, revocation and a second accept: a conditional
update decides, and the loser is told what the invitation became.

A new account created by accepting gets its own organisation, not the inviter's: a guest sees
the room it was invited to, never the host organisation's directory, org-wide knowledge or
other rooms, and the host's org admins cannot manage an outsider's account. Room membership is
what crosses organisations.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from iaf.accounts import service as accounts
from iaf.db.models import Invitation, Room, User
from iaf.db.repositories.invitations import InvitationRepository, InvitationView
from iaf.db.repositories.members import MemberRepository
from iaf.db.repositories.referrals import ReferralRepository
from iaf.db.repositories.room_events import EventRepository
from iaf.db.repositories.rooms import RoomRepository
from iaf.db.repositories.users import UserRepository
from iaf.errors import ApiError
from iaf.mail.links import derive_token, new_salt, token_hash
from iaf.rooms.service import ensure_room_for_one_more
from iaf.security import hashed_password, password_matches
from iaf.settings import Settings
from iaf.workflow_calls import (
    invitation_started,
    notify_invitation,
    request_resend,
    start_invitation,
)
from schemas.invitations import AcceptRequest

log = logging.getLogger(__name__)

# Counts one password attempt against the account's login limit (the caller's rate limiter).
CountLogin = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Accepted:
    """Who joined through the invitation; `with_token` when they may be handed a session."""

    invitation: Invitation
    user: User
    with_token: bool


def not_found() -> ApiError:
    return ApiError(404, "invitation_not_found", "invitation not found")


def _account_exists() -> ApiError:
    return ApiError(
        409, "account_exists", "an account with this e-mail exists: sign in, then accept"
    )


def _event(invitation: Invitation, **extra: str) -> dict[str, str]:
    return {
        "invitation_id": str(invitation.id),
        "room_id": str(invitation.room_id),
        "invited_by": str(invitation.invited_by),
        **extra,
    }


def _ensure_open(invitation: Invitation) -> None:
    status = invitation.current_status
    if status == "revoked":
        raise ApiError(410, "invitation_revoked", "this invitation was withdrawn")
    if status == "expired":
        raise ApiError(410, "invitation_expired", "this invitation has expired")


class InvitationService:
    def __init__(self, session: AsyncSession, settings: Settings, temporal: Client) -> None:
        self.session = session
        self.settings = settings
        self.temporal = temporal
        self.invitations = InvitationRepository(session)

    # ---- room owners and admins -------------------------------------------------------------

    async def check_invite(self, room: Room, email: str, minutes: int | None) -> int:
        """Refusals that do not count against the invite limit; returns the validity in minutes."""
        await ensure_room_for_one_more(self.session, room)
        minutes = minutes or self.settings.invitation_default_minutes
        if minutes > self.settings.invitation_max_minutes:
            raise ApiError(
                422,
                "invalid_expiry",
                f"expires_in_minutes must be 1 to {self.settings.invitation_max_minutes}",
            )
        invitee = await UserRepository(self.session).get_by_email(email)
        if invitee is not None and await RoomRepository(self.session).get_for_member(
            room.id, invitee.id
        ):
            raise ApiError(409, "already_member", "this person is already a member of the room")
        return minutes

    async def invite(
        self, room_id: uuid.UUID, inviter_id: uuid.UUID, email: str, minutes: int
    ) -> tuple[Invitation, bool]:
        """A new invitation with its workflow started, or the address's pending one (False)."""
        existing = await self._live_pending(room_id, email)
        if existing is None:
            created = await self._create(room_id, inviter_id, email, minutes)
            if created is not None:
                await self.session.commit()
                await self._start_or_undo(created)
                return created, True
            existing = await self.invitations.pending_for(room_id, email)
            if existing is None:
                raise ApiError(409, "conflict", "the invitation changed meanwhile; try again")
        await self.session.commit()
        await self._ensure_started(existing)
        return existing, False

    async def _create(
        self, room_id: uuid.UUID, inviter_id: uuid.UUID, email: str, minutes: int
    ) -> Invitation | None:
        """A new pending invitation; None when a concurrent request created one first."""
        salt = new_salt()
        token = derive_token(self.settings.secret("invitation_secret"), salt)
        expires_at = datetime.now(UTC) + timedelta(minutes=minutes)
        return await self.invitations.create(
            room_id, inviter_id, email, token_hash(token), salt, expires_at
        )

    async def _live_pending(self, room_id: uuid.UUID, email: str) -> Invitation | None:
        """The pending invitation, after closing one whose expiry passed before its timer fired."""
        existing = await self.invitations.pending_for(room_id, email)
        if existing is None or existing.current_status == "pending":
            return existing
        if await self.invitations.expire(existing.id):
            await EventRepository(self.session).append(
                room_id, "invitation.expired", _event(existing)
            )
        return None

    async def _start(self, invitation: Invitation) -> None:
        await start_invitation(
            self.temporal,
            self.settings,
            invitation.id,
            invitation.room_id,
            invitation.invited_by,
        )

    async def _start_or_undo(self, invitation: Invitation) -> None:
        """Without its workflow nobody would mail or expire the invitation: undo it and say so."""
        try:
            await self._start(invitation)
        except Exception as exc:
            timeout = self.settings.temporal_start_timeout_seconds
            if isinstance(exc, TimeoutError) and await invitation_started(
                self.temporal, invitation.id, timeout
            ):
                return  # the start was slow, not lost
            log.warning("invitation %s not started (%s); undone", invitation.id, type(exc).__name__)
            await self.invitations.delete(invitation.id)
            await self.session.commit()
            raise ApiError(
                503, "temporarily_unavailable", "invitations are unavailable right now; try again"
            ) from None

    async def _ensure_started(self, invitation: Invitation) -> None:
        try:
            await self._start(invitation)
        except Exception as exc:
            log.warning("invitation %s: start check failed (%s)", invitation.id, type(exc).__name__)

    async def in_room(self, room_id: uuid.UUID, invitation_id: uuid.UUID) -> Invitation:
        invitation = await self.invitations.in_room(room_id, invitation_id)
        if invitation is None:
            raise not_found()
        return invitation

    async def list_for_room(self, room_id: uuid.UUID) -> list[Invitation]:
        return list(await self.invitations.list_for_room(room_id))

    def check_resend(self, invitation: Invitation) -> None:
        if invitation.current_status != "pending":
            raise ApiError(
                409, "invitation_closed", f"the invitation is {invitation.current_status}"
            )

    async def resend(self, invitation: Invitation) -> None:
        """Mails the same link again (the token is derived, not rotated)."""
        seq = await self.invitations.request_resend(invitation.id)
        if seq is None:
            raise ApiError(409, "invitation_closed", "the invitation is no longer pending")
        await self.session.commit()
        try:
            await request_resend(self.temporal, invitation.id, seq)
        except Exception:
            raise ApiError(
                503, "temporarily_unavailable", "could not queue the e-mail; try again"
            ) from None

    async def revoke(self, invitation: Invitation) -> Invitation:
        """Idempotent; the link stops working at once, the workflow is told to stop."""
        if invitation.status == "pending" and await self.invitations.revoke(invitation.id):
            await self.session.commit()
            await notify_invitation(self.temporal, invitation.id, "revoked")
            refreshed = await self.invitations.get(invitation.id)
            assert refreshed is not None
            return refreshed
        if invitation.status != "revoked":
            raise ApiError(409, "invitation_closed", f"the invitation is {invitation.status}")
        return invitation

    # ---- the link's holder ------------------------------------------------------------------

    async def view(self, token: str) -> InvitationView | None:
        """Looked up by the token's SHA-256 in one indexed query, known or not: an unknown
        token costs what a real one does."""
        return await self.invitations.view(token_hash=token_hash(token))

    async def accept(
        self,
        view: InvitationView,
        caller: User | None,
        body: AcceptRequest | None,
        count_login: CountLogin,
    ) -> Accepted:
        """Join the room: signed in with the invited address, or sign up with {name, password}."""
        invitation = view.invitation
        if invitation.status == "accepted":
            return await self._accepted_again(invitation, caller, body, count_login)
        _ensure_open(invitation)
        if view.room_archived:
            raise ApiError(409, "room_archived", "the room is archived")
        user, created = await self._invitee(invitation, caller, body)
        # Locked like every member change, and checked again under the lock, so a concurrent
        # archive or add cannot slip in; a refusal rolls back the new account too.
        room = await MemberRepository(self.session).lock_room(invitation.room_id)
        if room is None:
            raise not_found()
        if room.archived_at is not None:
            raise ApiError(409, "room_archived", "the room is archived")
        await ensure_room_for_one_more(self.session, room, user.id)
        if not await self.invitations.accept(invitation.id, user.id):
            await self.session.rollback()
            return await self._lost_race(invitation.id, caller, body, count_login)
        await self._join_room(invitation, user)
        if created:
            await self._refer(invitation, user)
        await self.session.commit()
        await notify_invitation(self.temporal, invitation.id, "accepted")
        return Accepted(invitation, user, with_token=created)

    async def _invitee(
        self, invitation: Invitation, caller: User | None, body: AcceptRequest | None
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
        user = await accounts.sign_up(
            self.session,
            self.settings,
            email=invitation.email,
            name=body.name,
            password_hash=await hashed_password(body.password),
            taken=_account_exists,
        )
        return user, True

    async def _join_room(self, invitation: Invitation, user: User) -> None:
        """member.add for the room, and invitation.accepted so the inviter sees "B joined"."""
        events = EventRepository(self.session)
        if await MemberRepository(self.session).add(invitation.room_id, user.id, "member"):
            await events.append(
                invitation.room_id,
                "member.add",
                {"user_id": str(user.id), "role": "member", "invitation_id": str(invitation.id)},
            )
        await events.append(
            invitation.room_id, "invitation.accepted", _event(invitation, user_id=str(user.id))
        )

    async def _refer(self, invitation: Invitation, user: User) -> None:
        """The inviter earns credits once the new user acts (the Referral workflow decides)."""
        deadline = datetime.now(UTC) + timedelta(days=self.settings.referral_deadline_days)
        await ReferralRepository(self.session).create(
            invitation.invited_by,
            user.id,
            invitation.id,
            self.settings.referral_reward_credits,
            deadline,
        )

    async def _lost_race(
        self,
        invitation_id: uuid.UUID,
        caller: User | None,
        body: AcceptRequest | None,
        count_login: CountLogin,
    ) -> Accepted:
        """The conditional accept found the row no longer pending: say what it became."""
        invitation = await self.invitations.get(invitation_id)
        if invitation is None:
            raise not_found()
        if invitation.status == "accepted":
            return await self._accepted_again(invitation, caller, body, count_login)
        _ensure_open(invitation)
        raise ApiError(410, "invitation_expired", "this invitation has expired")

    async def _accepted_again(
        self,
        invitation: Invitation,
        caller: User | None,
        body: AcceptRequest | None,
        count_login: CountLogin,
    ) -> Accepted:
        """Idempotent for whoever accepted it (a retried sign-up proves itself with the password).

        Handing out a token for a password is a login: it counts against the same per-account
        limit (`login:{email}`) and only an active account gets one.
        """
        accepted_by = invitation.accepted_user_id
        if caller is not None and caller.id == accepted_by:
            return Accepted(invitation, caller, with_token=False)
        if caller is None and body is not None and accepted_by is not None:
            # In the request's session, committed at once so that a wrong password counts
            # too; nothing else is written before this point.
            await count_login(f"login:{invitation.email.lower()}")
            await self.session.commit()
            user = await UserRepository(self.session).get(accepted_by)
            same = user is not None and user.email.lower() == invitation.email.lower()
            valid = await password_matches(user.password_hash if user else None, body.password)
            if user is not None and same and valid and user.status == "active":
                return Accepted(invitation, user, with_token=True)
        raise ApiError(409, "invitation_used", "this invitation has already been accepted")

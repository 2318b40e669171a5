"""Invitations and referrals over HTTP, and the ID-only inputs of their workflows and activities."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AliasChoices, AliasPath, BaseModel, ConfigDict, EmailStr, Field

from schemas.auth import UserOut
from schemas.common import NameStr, UnicodeStr

InvitationStatus = Literal["pending", "accepted", "revoked", "expired"]
ReferralStatus = Literal["pending", "granted", "expired", "capped"]
MailKind = Literal["invite", "reminder", "resend"]

# ---- HTTP ----------------------------------------------------------------------------------


class InviteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    # Bounds are checked against settings by the route (1 minute to invitation_max_minutes).
    expires_in_minutes: int | None = Field(default=None, ge=1)


class InvitationOut(BaseModel):
    """What the room's owners and admins see; the token is never shown, only mailed."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    room_id: uuid.UUID
    email: str
    invited_by: uuid.UUID
    # Read from the row's current_status: past its expiry a pending invitation is expired.
    status: InvitationStatus = Field(validation_alias=AliasChoices("current_status", "status"))
    expires_at: datetime
    created_at: datetime
    closed_at: datetime | None = None
    accepted_user_id: uuid.UUID | None = None
    invite_sent_at: datetime | None = None
    reminder_sent_at: datetime | None = None


class InvitationPublic(BaseModel):
    """What the holder of a link sees: enough to decide, nothing about the room's content.

    Validated from the invitation's view: the row under `invitation`, the names beside it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(validation_alias=AliasPath("invitation", "id"))
    room_name: str
    inviter_name: str
    # Past its expiry a pending invitation is expired (the row's current_status).
    status: InvitationStatus = Field(validation_alias=AliasPath("invitation", "current_status"))
    expires_at: datetime = Field(validation_alias=AliasPath("invitation", "expires_at"))


class AcceptRequest(BaseModel):
    """Sign-up and accept in one call; the e-mail is the invited one."""

    model_config = ConfigDict(extra="forbid")

    name: NameStr = Field(min_length=1, max_length=200)
    password: UnicodeStr = Field(min_length=8, max_length=256)


class AcceptResponse(BaseModel):
    id: uuid.UUID  # the invitation
    status: Literal["accepted"] = "accepted"
    room_id: uuid.UUID
    user: UserOut
    # Set for a user created by this call (or its idempotent retry), so the page can log in.
    access_token: str | None = None
    token_type: Literal["bearer"] = "bearer"
    expires_in: int | None = None


class ReferralOut(BaseModel):
    id: uuid.UUID
    status: ReferralStatus
    referred_user_id: uuid.UUID
    referred_name: str | None
    reward_credits: int
    created_at: datetime
    deadline_at: datetime
    first_action_at: datetime | None = None
    decided_at: datetime | None = None


# ---- Temporal (IDs, statuses and times only: rule 2) ---------------------------------------


class InvitationInput(BaseModel):
    invitation_id: uuid.UUID


class InvitationRef(BaseModel):
    invitation_id: uuid.UUID


class InvitationSchedule(BaseModel):
    status: InvitationStatus | Literal["gone"]
    expires_at: datetime
    reminder_at: datetime


class ResendRequest(BaseModel):
    seq: int


class InvitationMail(BaseModel):
    invitation_id: uuid.UUID
    kind: MailKind
    seq: int = 0


class MailOutcome(BaseModel):
    sent: bool
    # sent | already_sent | not_pending | gone
    reason: str


class CloseRequest(BaseModel):
    invitation_id: uuid.UUID
    # True when the expiry timer fired: close a still-pending invitation as expired.
    expire: bool


class InvitationClosed(BaseModel):
    status: InvitationStatus | Literal["gone"]
    referral_id: uuid.UUID | None = None


class InvitationResult(BaseModel):
    invitation_id: uuid.UUID
    status: InvitationStatus | Literal["gone"]
    invite_sent: bool
    reminders_sent: int
    referral_id: uuid.UUID | None = None


class ReferralInput(BaseModel):
    referral_id: uuid.UUID


class ReferralRef(BaseModel):
    referral_id: uuid.UUID


class ReferralState(BaseModel):
    status: ReferralStatus | Literal["gone"]
    deadline_at: datetime
    acted: bool
    recheck_seconds: float


class ReferralOutcome(BaseModel):
    referral_id: uuid.UUID
    status: ReferralStatus | Literal["gone"]

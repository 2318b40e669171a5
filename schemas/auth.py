"""Sign-up, login and the user as clients see it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from schemas.common import NameStr, SafeStr, UnicodeStr

Role = Literal["member", "org_admin", "compliance"]


class SignupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: UnicodeStr = Field(min_length=8, max_length=256)
    name: NameStr = Field(min_length=1, max_length=200)
    org_name: SafeStr | None = Field(default=None, max_length=200)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: UnicodeStr = Field(min_length=1, max_length=256)


class OrgUserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    name: NameStr = Field(min_length=1, max_length=200)
    password: UnicodeStr = Field(min_length=8, max_length=256)
    role: Role = "member"


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    email: str
    name: str
    handle: str
    role: str
    # active, or deactivated by an org admin (GET /api/org/users lists both).
    status: str = "active"
    created_at: datetime


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    user: UserOut


ApiKeyScope = Literal["chat", "agents", "compliance"]
API_KEY_MAX_DAYS = 365


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: NameStr = Field(min_length=1, max_length=100)
    # Omitted: every scope the owner's role allows (compliance only for compliance users).
    scopes: list[ApiKeyScope] | None = Field(default=None, min_length=1, max_length=3)
    expires_in_days: int = Field(default=90, ge=1, le=API_KEY_MAX_DAYS)


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr


class PasswordResetConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    new_password: UnicodeStr = Field(min_length=8, max_length=256)


class Accepted(BaseModel):
    """A request taken in; what it leads to is not told (a reset for an unknown address)."""

    status: Literal["accepted"] = "accepted"


class PasswordResetInput(BaseModel):
    """The PasswordReset workflow's input and its activities': the reset row's id only."""

    reset_id: uuid.UUID


class PasswordResetSchedule(BaseModel):
    status: str
    expires_at: datetime


class MailSent(BaseModel):
    sent: bool
    reason: str


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    scopes: list[str] = Field(default_factory=list)
    expires_at: datetime | None = None


class ApiKeyCreated(ApiKeyOut):
    key: str

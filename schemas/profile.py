"""The person's own account: profile changes, password, e-mail confirmation, sign-out, and
the ID-only input of the workflow that mails the confirmation link."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from schemas.auth import UserOut
from schemas.common import NameStr, UnicodeStr


class ProfileUpdate(BaseModel):
    """Omitted fields stay as they are. A new e-mail takes effect once its link is opened."""

    model_config = ConfigDict(extra="forbid")

    name: NameStr | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None

    @model_validator(mode="after")
    def _something(self) -> ProfileUpdate:
        if self.name is None and self.email is None:
            raise ValueError("give a name, an email, or both")
        return self


class MeOut(UserOut):
    # The address waiting for confirmation, if any.
    pending_email: str | None = None

    @classmethod
    def of(cls, user: object, pending_email: str | None) -> MeOut:
        """`pending_email`: the new address whose confirmation link is not opened yet."""
        out = cls.model_validate(user, from_attributes=True)
        return out.model_copy(update={"pending_email": pending_email})


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=256)
    new_password: UnicodeStr = Field(min_length=8, max_length=256)


class EmailConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=10, max_length=200)


class EmailChangeMail(BaseModel):
    email_change_id: uuid.UUID

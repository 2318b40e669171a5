"""Notification digests: workflow and activity inputs (ids only), and the HTTP shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

NotificationKind = Literal["mention", "reply", "invitation_accepted"]


class NotifyRequest(BaseModel):
    """Something happened that people may have to be told of by e-mail: which thing, by id."""

    kind: NotificationKind
    message_id: int | None = None
    reply_id: str | None = None
    invitation_id: uuid.UUID | None = None


class NotifyResult(BaseModel):
    # People with this notification waiting for a digest (their digest was signalled).
    queued: int = 0


class DigestInput(BaseModel):
    user_id: uuid.UUID
    # From the settings of whoever started it (a workflow reads no settings itself).
    delay_seconds: float = 60.0
    window_minutes: float = 15.0


class DigestCheck(BaseModel):
    user_id: uuid.UUID


class DigestDue(BaseModel):
    pending: int
    # When the last digest went out (by the workflow's clock), if ever.
    last_sent_at: datetime | None = None


class DigestSend(BaseModel):
    user_id: uuid.UUID
    # The workflow's clock: the window between digests is measured on it.
    sent_at: datetime


class DigestSent(BaseModel):
    sent: bool
    items: int = 0


class DigestResult(BaseModel):
    digests_sent: int = 0
    items_sent: int = 0


# --- HTTP ---------------------------------------------------------------------------------


class NotificationSettingsOut(BaseModel):
    email_digest: bool
    # How often a digest may come, at most (minutes).
    digest_minutes: float
    changed_by: str | None = None
    updated_at: datetime | None = None


class NotificationSettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email_digest: bool


class UnsubscribeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=2000)


class UnsubscribeOut(BaseModel):
    email_digest: Literal[False] = False

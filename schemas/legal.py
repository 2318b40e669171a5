"""Legal pages and the breach report over HTTP."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class LegalPageOut(BaseModel):
    name: str
    title: str
    url: str
    markdown_url: str


class LegalIndex(BaseModel):
    pages: list[LegalPageOut]
    # Operator details still unset: the pages show "[set NAME]" in their place.
    missing_settings: list[str]


class BreachPersonOut(BaseModel):
    user_id: uuid.UUID
    # The keyed pseudonym GDPR workflows carry (SubjectRef): quote it in records, not the id.
    subject_ref: str
    # Only when asked for (include_email): to contact the person (Art. 34), never stored.
    email: str | None = None
    status: str
    account_created_at: datetime
    records_in_window: dict[str, int]


class ErasedPersonOut(BaseModel):
    subject_ref: str
    requested_at: datetime
    erased_at: datetime | None


class BreachReport(BaseModel):
    """Who a breach between `since` and `until` may concern, in the caller's organisation."""

    since: datetime
    until: datetime
    people: list[BreachPersonOut]
    # Erased after the window began: nothing left to notify, the pseudonym for the record.
    erased: list[ErasedPersonOut]
    records_in_window: dict[str, int]

"""Credits as clients see them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LedgerEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    amount: int
    kind: str
    source: str
    source_id: str
    meta: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class CreditsOut(BaseModel):
    balance: int
    items: list[LedgerEntryOut]
    # Pass as ?before= to get the next (older) page; None on the last page.
    next_before: int | None = None

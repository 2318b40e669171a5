"""GDPR shapes: HTTP bodies and responses, workflow/activity inputs (request IDs only, rule 2)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

# Kinds, statuses and step names shared by the workflows, the repositories, the API and the CLI.
EXPORT: Final = "export"
ERASURE: Final = "erasure"

EXPORT_STEPS: Final = ("archive",)
ERASURE_STEPS: Final = (
    "grace",
    "freeze",
    "anonymise",
    "delete_private",
    "delete_vectors",
    "delete_workflows",
    "delete_account",
    "audit",
    "verify",
)
STATUSES: Final = ("pending", "in_grace", "in_progress", "complete", "error", "cancelled")
OPEN_STATUSES: Final = ("pending", "in_grace", "in_progress", "error")


def steps_for(kind: str) -> tuple[str, ...]:
    return ERASURE_STEPS if kind == ERASURE else EXPORT_STEPS


Kind = Literal["export", "erasure"]
Status = Literal["pending", "in_grace", "in_progress", "complete", "error", "cancelled"]
Purpose = Literal["analytics", "marketing", "ai_training"]

# --- HTTP ---------------------------------------------------------------------------------


class StepOut(BaseModel):
    step: str
    status: str
    attempts: int
    last_error: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class RequestOut(BaseModel):
    id: uuid.UUID
    kind: str
    status: str
    subject_user_id: uuid.UUID | None
    subject_ref: str
    requested_via: str
    reason: str
    failed_step: str | None
    created_at: datetime
    due_at: datetime
    grace_until: datetime | None
    completed_at: datetime | None
    workflow_id: str
    steps: list[StepOut] = Field(default_factory=list)
    archive_bytes: int | None = None
    archive_expires_at: datetime | None = None
    archive_available: bool = False
    # Present when the export is ready: a fresh single-purpose link, valid until archive_expires_at.
    download_url: str | None = None
    verification: dict[str, Any] | None = None


class DeleteAccountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=256)


class ConsentOut(BaseModel):
    purpose: str
    granted: bool
    updated_at: datetime | None = None


class ConsentChangeOut(BaseModel):
    purpose: str
    granted: bool
    changed_at: datetime


class ConsentsOut(BaseModel):
    items: list[ConsentOut]
    history: list[ConsentChangeOut]


class ConsentsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    consents: dict[Purpose, bool] = Field(min_length=1)


class SubjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID | None = None
    email: EmailStr | None = None

    @model_validator(mode="after")
    def exactly_one(self) -> SubjectIn:
        if (self.user_id is None) == (self.email is None):
            raise ValueError("give exactly one of user_id or email")
        return self


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    subjects: list[SubjectIn] = Field(min_length=1, max_length=500)
    reason: str = Field(min_length=1, max_length=2000)
    # Erasure only: days the subject can still cancel (default: the erasure_grace_days setting).
    grace_days: float | None = Field(default=None, ge=0, le=30)


class BatchItem(BaseModel):
    index: int
    # created | existing | not_found | erasure_in_progress (no export of a subject being erased)
    outcome: str
    request: RequestOut | None = None


class BatchOut(BaseModel):
    items: list[BatchItem]


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Default: the step that failed. An earlier step runs it and every later one again.
    from_step: str | None = Field(default=None, max_length=40)


class ReceiptOut(BaseModel):
    request_id: uuid.UUID
    receipt: dict[str, Any]
    signature: str
    algorithm: str = "HMAC-SHA256"
    valid: bool


# --- workflows and activities (IDs only) -----------------------------------------------------


class GdprWorkflowInput(BaseModel):
    request_id: str


class StepInput(BaseModel):
    request_id: str
    step: str


class RetryConfig(BaseModel):
    initial_seconds: float
    maximum_attempts: int


class ErasurePlan(BaseModel):
    status: str
    done_steps: list[str]
    grace_seconds: float
    retry: RetryConfig
    # Qdrant activities run where the Qdrant client lives (local mode admits one process).
    retrieval_task_queue: str


class StepResult(BaseModel):
    step: str
    counts: dict[str, int] = Field(default_factory=dict)
    # Workflow IDs (business keys, not personal data) a later activity must act on.
    workflow_ids: list[str] = Field(default_factory=list)


class CancelWorkflowsInput(BaseModel):
    request_id: str
    workflow_ids: list[str]


class FindingOut(BaseModel):
    location: str
    # "text": a copy of the subject's own words (iaf.privacy.fingerprints).
    needle: Literal["email", "name", "id", "text"]
    rows: int


class VerificationPart(BaseModel):
    store: Literal["postgres", "qdrant", "temporal", "exports", "files"]
    checked: int
    # Traces of the subject: the verification fails while there are any.
    findings: list[FindingOut]
    # The subject's name where nothing links it to them (another person of the same name,
    # someone else's room or archive): counts for a person to review, not a failure.
    review: list[FindingOut] = Field(default_factory=list)


class FinishErasureInput(BaseModel):
    request_id: str
    parts: list[VerificationPart]


class ErasureResult(BaseModel):
    request_id: str
    status: str
    clean: bool | None = None


class ExportPlan(BaseModel):
    status: str
    retry: RetryConfig


class ExportResult(BaseModel):
    request_id: str
    status: str
    archive_bytes: int = 0
    # Seconds from now until the archive expires and is deleted.
    expires_in_seconds: float = 0.0

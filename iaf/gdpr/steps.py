"""Step names shared by the workflows, the repositories, the API and the CLI."""

from __future__ import annotations

from typing import Final

EXPORT: Final = "export"
ERASURE: Final = "erasure"
KINDS: Final = (EXPORT, ERASURE)

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


def workflow_id(kind: str, request_id: str) -> str:
    """`export-{request_id}` / `erasure-{request_id}`: random IDs, never the subject's (rule 2)."""
    return f"{kind}-{request_id}"

"""`iaf gdpr status` says which step holds an erasure up and why."""

from __future__ import annotations

from typing import Any

from iaf.gdpr.cli import why


def request(status: str, steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"status": status, "steps": steps, **extra}


def test_a_step_being_retried_names_its_error_and_attempt():
    steps = [
        {"step": "freeze", "status": "done", "attempts": 1, "last_error": None},
        {
            "step": "delete_account",
            "status": "running",
            "attempts": 3,
            "last_error": "ApplicationError: the database refused to scrub"
            " ledger_entries.meta:failed:P0001",
        },
    ]
    assert why(request("in_progress", steps)) == (
        "delete_account: ApplicationError: the database refused to scrub"
        " ledger_entries.meta:failed:P0001 (attempt 3)"
    )


def test_a_failed_verification_lists_where_traces_were_found():
    steps = [{"step": "verify", "status": "error", "attempts": 1, "last_error": "traces found"}]
    verification = {
        "findings": [{"location": "postgres:messages.content", "needle": "text", "rows": 2}]
    }
    assert why(request("error", steps, verification=verification)) == (
        "verify: traces found (attempt 1); found: postgres:messages.content text×2"
    )


def test_nothing_to_say_for_a_finished_request():
    steps = [{"step": "verify", "status": "error", "attempts": 1, "last_error": "old"}]
    assert why(request("complete", steps)) == ""

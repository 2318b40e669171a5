"""`iaf gdpr`: data-team commands. They talk to the HTTP API with a compliance user's API key,
so the API's authorisation, org scoping and request bookkeeping apply to scripts as to people,
and the commands need no database or Temporal credentials. Progress bars follow each request
by polling GET /api/compliance/requests/{id}.

    export IAF_API_URL=https://iaf.example.com IAF_API_KEY=iaf_...
    iaf gdpr export alice@example.com --reason "ticket 42" --out ./archives
    iaf gdpr erase 3f2c...-user-id --reason "ticket 43" --grace-days 0
    iaf gdpr status --kind erasure --status error
    iaf gdpr retry <request-id>
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

app = typer.Typer(
    help="GDPR export and erasure for data teams (via the API, role compliance).",
    no_args_is_help=True,
)
console = Console(stderr=True)
FINAL = ("complete", "error", "cancelled")
API_URL = typer.Option(
    None, "--api-url", envvar="IAF_API_URL", help="API base URL (default: PUBLIC_BASE_URL)"
)
API_KEY = typer.Option(
    ..., "--api-key", envvar="IAF_API_KEY", help="API key of a user with role compliance"
)


class Api:
    def __init__(self, url: str | None, key: str) -> None:
        if url is None:
            from iaf.settings import get_settings

            url = get_settings().public_base_url
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                message = f"{error['code']}: {error['message']}"
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            console.print(f"[red]{method} {path} → {response.status_code} {message}[/red]")
            raise typer.Exit(2)
        return (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else response.content
        )


def subject(value: str) -> dict[str, str]:
    """An e-mail address or a user id."""
    if "@" in value:
        return {"email": value}
    try:
        return {"user_id": str(uuid.UUID(value))}
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither an e-mail address nor a user id") from None


def _done_steps(request: dict[str, Any]) -> int:
    return sum(1 for s in request["steps"] if s["status"] in ("done", "skipped"))


def _label(request: dict[str, Any]) -> str:
    running = next((s["step"] for s in request["steps"] if s["status"] in ("running", "error")), "")
    detail = f" {running}" if running and request["status"] not in FINAL else ""
    return f"{request['kind']} {str(request['id'])[:8]} [bold]{request['status']}[/bold]{detail}"


def follow(
    api: Api, ids: list[str], interval: float = 1.0, timeout: float | None = None
) -> list[dict[str, Any]]:
    """Rich progress bars, one per request, until every request is complete, failed or cancelled."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    started = time.monotonic()
    with Progress(*columns, console=console) as progress:
        tasks: dict[str, TaskID] = {}
        while True:
            current = [api.call("GET", f"/api/compliance/requests/{i}") for i in ids]
            for request in current:
                rid = str(request["id"])
                if rid not in tasks:
                    tasks[rid] = progress.add_task(_label(request), total=len(request["steps"]))
                progress.update(
                    tasks[rid], completed=_done_steps(request), description=_label(request)
                )
            if all(r["status"] in FINAL for r in current):
                return current
            if timeout is not None and time.monotonic() - started > timeout:
                console.print(
                    "[yellow]still running; follow with `iaf gdpr status --follow`[/yellow]"
                )
                return current
            time.sleep(interval)


def why(request: dict[str, Any]) -> str:
    """Which step holds the request up and why: the failed step's error (a verification's
    findings, by location), or the last error of a step being retried."""
    if request["status"] in ("complete", "cancelled"):
        return ""
    for step in request["steps"]:
        if step["status"] not in ("error", "running") or not step.get("last_error"):
            continue
        reason = f"{step['step']}: {step['last_error']} (attempt {step['attempts']})"
        verification = request.get("verification") or {}
        findings = verification.get("findings") or []
        if step["step"] == "verify" and findings:
            where = ", ".join(f"{f['location']} {f['needle']}×{f['rows']}" for f in findings[:5])
            reason += f"; found: {where}"
        return reason
    return ""


def report(requests: list[dict[str, Any]]) -> None:
    table = Table("request", "kind", "status", "failed step", "why", "subject", "due", "workflow")
    for r in requests:
        table.add_row(
            str(r["id"]),
            r["kind"],
            r["status"],
            r["failed_step"] or "",
            why(r),
            str(r["subject_user_id"] or r["subject_ref"][:12] + "…"),
            r["due_at"][:10],
            r["workflow_id"],
        )
    Console().print(table)


def _exit_code(requests: list[dict[str, Any]]) -> None:
    if any(r["status"] in ("error", "cancelled") for r in requests):
        raise typer.Exit(1)


def _submit(api: Api, body: dict[str, Any]) -> list[str]:
    result = api.call("POST", "/api/compliance/requests", json=body)
    ids = []
    for item in result["items"]:
        if item["request"] is None:
            why = (
                "not found in your organisation"
                if item["outcome"] == "not_found"
                else item["outcome"].replace("_", " ")
            )
            console.print(f"[red]subject #{item['index'] + 1}: {why}[/red]")
        else:
            console.print(
                f"subject #{item['index'] + 1}: {item['outcome']} {item['request']['id']}"
            )
            ids.append(str(item["request"]["id"]))
    return ids


@app.command()
def export(
    subjects: list[str] = typer.Argument(..., help="E-mail addresses or user ids"),
    reason: str = typer.Option(..., "--reason", help="Why (ticket reference); no personal data"),
    out: Path | None = typer.Option(None, "--out", help="Directory to save the archives into"),
    wait: bool = typer.Option(True, "--wait/--no-wait"),
    api_url: str | None = API_URL,
    api_key: str = API_KEY,
) -> None:
    """Export subjects' data (Art. 15/20); with --out, download each archive."""
    api = Api(api_url, api_key)
    ids = _submit(
        api, {"kind": "export", "subjects": [subject(s) for s in subjects], "reason": reason}
    )
    if not wait or not ids:
        raise typer.Exit(0 if ids else 1)
    final = follow(api, ids)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for request in final:
            if request["status"] == "complete":
                path = out / f"export-{request['id']}.zip"
                path.write_bytes(
                    api.call("GET", f"/api/compliance/requests/{request['id']}/archive")
                )
                console.print(f"saved {path}")
    report(final)
    _exit_code(final)


@app.command()
def erase(
    subjects: list[str] = typer.Argument(..., help="E-mail addresses or user ids"),
    reason: str = typer.Option(..., "--reason", help="Why (ticket reference); no personal data"),
    grace_days: float | None = typer.Option(
        None, "--grace-days", help="Default: ERASURE_GRACE_DAYS"
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait"),
    api_url: str | None = API_URL,
    api_key: str = API_KEY,
) -> None:
    """Erase subjects (Art. 17); waits through the grace period unless --no-wait."""
    api = Api(api_url, api_key)
    body: dict[str, Any] = {
        "kind": "erasure",
        "subjects": [subject(s) for s in subjects],
        "reason": reason,
    }
    if grace_days is not None:
        body["grace_days"] = grace_days
    ids = _submit(api, body)
    if not wait or not ids:
        raise typer.Exit(0 if ids else 1)
    final = follow(api, ids)
    report(final)
    _exit_code(final)


@app.command()
def status(
    request_ids: list[str] = typer.Argument(
        None, help="Requests to show (default: the latest ones)"
    ),
    kind: str | None = typer.Option(None, "--kind", help="export | erasure"),
    status_filter: str | None = typer.Option(
        None, "--status", help="pending, in_grace, in_progress, ..."
    ),
    follow_progress: bool = typer.Option(False, "--follow", help="Progress bars until they finish"),
    api_url: str | None = API_URL,
    api_key: str = API_KEY,
) -> None:
    """Show requests; --follow draws progress bars until they finish."""
    api = Api(api_url, api_key)
    if request_ids:
        requests = [api.call("GET", f"/api/compliance/requests/{i}") for i in request_ids]
    else:
        params = {k: v for k, v in {"kind": kind, "status": status_filter}.items() if v}
        requests = api.call("GET", "/api/compliance/requests", params=params)["items"]
    if follow_progress and requests:
        requests = follow(api, [str(r["id"]) for r in requests])
    report(requests)


@app.command()
def retry(
    request_id: str,
    from_step: str | None = typer.Option(None, "--from-step", help="Default: the step that failed"),
    wait: bool = typer.Option(True, "--wait/--no-wait"),
    api_url: str | None = API_URL,
    api_key: str = API_KEY,
) -> None:
    """Resume a failed request from its failed step."""
    api = Api(api_url, api_key)
    body = {"from_step": from_step} if from_step else {}
    request = api.call("POST", f"/api/compliance/requests/{request_id}/retry", json=body)
    final = follow(api, [str(request["id"])]) if wait else [request]
    report(final)
    _exit_code(final)


@app.command()
def cancel(request_id: str, api_url: str | None = API_URL, api_key: str = API_KEY) -> None:
    """Cancel an erasure still in its grace period, or an unfinished export."""
    api = Api(api_url, api_key)
    report([api.call("POST", f"/api/compliance/requests/{request_id}/cancel")])


def _instant(value: str) -> str:
    """A date (midnight UTC) or an ISO time; a time without a zone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (2026-05-01) or a time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


@app.command()
def breach(
    since: str = typer.Option(..., "--from", help="Start of the window (date or ISO time, UTC)"),
    until: str = typer.Option(..., "--to", help="End of the window, excluded"),
    emails: bool = typer.Option(
        False, "--emails", help="Show e-mail addresses (on this terminal only) to notify people"
    ),
    api_url: str | None = API_URL,
    api_key: str = API_KEY,
) -> None:
    """List the people a personal data breach in a time window may concern (Art. 33/34);
    the procedure is docs/breach-notification.md."""
    api = Api(api_url, api_key)
    params = {"from": _instant(since), "to": _instant(until), "include_email": emails}
    result = api.call("GET", "/api/compliance/breach", params=params)
    kinds = list(result["records_in_window"])
    table = Table("user", "subject ref", *(["e-mail"] if emails else []), "status", *kinds)
    for person in result["people"]:
        counts = [str(person["records_in_window"][k]) for k in kinds]
        email = [person["email"] or ""] if emails else []
        table.add_row(person["user_id"], person["subject_ref"], *email, person["status"], *counts)
    Console().print(table)
    for gone in result["erased"]:
        Console().print(f"erased since the window began: {gone['subject_ref']}")
    totals = ", ".join(f"{v} {k}" for k, v in result["records_in_window"].items())
    console.print(
        f"{len(result['people'])} people with an account in the window ({totals} written in"
        f" it); {len(result['erased'])} erased since"
    )

"""GDPR activities needing PostgreSQL (and the exports directory): plans, steps, archive, audit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from iaf.accounts.service import default_org_name
from iaf.db.models import DataSubjectRequest, User
from iaf.db.repositories.attachments import AttachmentRepository
from iaf.db.repositories.erasure import ErasureRepository
from iaf.db.repositories.erasure_audit import AuditRepository
from iaf.db.repositories.erasure_scan import ErasureScanRepository
from iaf.db.repositories.erasure_targets import ErasureTargetRepository, Targets
from iaf.db.repositories.gdpr_export import ExportRepository
from iaf.db.repositories.gdpr_requests import RequestRepository
from iaf.db.repositories.source_copies import SourceCopyRepository
from iaf.db.repositories.stale_archives import StaleArchiveRepository
from iaf.files.store import FileStore, file_store, user_prefix
from iaf.gdpr import receipt
from iaf.gdpr.archive import write_archive
from iaf.gdpr.art15 import art15_information
from iaf.gdpr.export_schema import FORMAT, VERSION
from iaf.gdpr.exports_scan import archives_naming, scan_exports
from iaf.gdpr.scan import Needles
from iaf.gdpr.stepping import run_step
from iaf.legal.pages import all_markdown
from iaf.settings import Settings
from schemas.gdpr import (
    ErasurePlan,
    ErasureResult,
    ExportPlan,
    ExportResult,
    FindingOut,
    FinishErasureInput,
    GdprWorkflowInput,
    RetryConfig,
    StepInput,
    StepResult,
    VerificationPart,
)

# Attempts at an archive no message changed during, before the activity retries later.
EXPORT_WRITES = 3


def exports_dir(settings: Settings) -> Path:
    return settings.data_dir / "exports"


def _not_found(request_id: str) -> ApplicationError:
    return ApplicationError(
        f"request {request_id} not found", type="RequestNotFound", non_retryable=True
    )


async def _request(session: AsyncSession, request_id: str) -> DataSubjectRequest:
    request = await RequestRepository(session).get(uuid.UUID(request_id))
    if request is None:
        raise _not_found(request_id)
    return request


async def _targets(session: AsyncSession, request_id: str) -> Targets:
    targets = await ErasureTargetRepository(session).get(uuid.UUID(request_id))
    if targets is None:
        raise ApplicationError(
            "erasure targets missing: run from the freeze step",
            type="NoTargets",
            non_retryable=True,
        )
    return targets


class GdprDatabaseActivities:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        files: FileStore | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        # Attachment bytes: exported with the subject's data, erased with it.
        self.files = files or file_store(settings)

    def _retry(self) -> RetryConfig:
        return RetryConfig(
            initial_seconds=self.settings.gdpr_retry_initial_seconds,
            maximum_attempts=self.settings.gdpr_step_max_attempts,
        )

    # --- request lifecycle -------------------------------------------------------------------

    @activity.defn(name="gdpr_erasure_plan")
    async def erasure_plan(self, input: GdprWorkflowInput) -> ErasurePlan:
        """Where this request stands: a new run (retry) skips the steps already done."""
        async with self.sessionmaker() as session:
            requests = RequestRepository(session)
            # Locked (shared) so the status and the steps are read as one: a cancellation
            # commits both, and a plan seeing "grace skipped" with the old status would run
            # the erasure of a cancelled request.
            request = await requests.get(uuid.UUID(input.request_id), lock=True)
            if request is None:
                raise _not_found(input.request_id)
            done = await requests.done_steps(request.id)
            await session.commit()
        grace = 0.0
        if request.grace_until is not None:
            grace = max(0.0, (request.grace_until - datetime.now(UTC)).total_seconds())
        return ErasurePlan(
            status=request.status,
            done_steps=done,
            grace_seconds=grace,
            retry=self._retry(),
            retrieval_task_queue=self.settings.temporal_retrieval_task_queue,
        )

    @activity.defn(name="gdpr_erasure_begin")
    async def erasure_begin(self, input: GdprWorkflowInput) -> str:
        """Grace is over: in_progress, unless a cancellation was stored first (the DB decides)."""
        request_id = uuid.UUID(input.request_id)
        async with self.sessionmaker() as session:
            requests = RequestRepository(session)
            if await requests.set_status(
                request_id, "in_progress", only_from=("pending", "in_grace")
            ):
                await requests.step_finished(request_id, "grace", "done")
            request = await _request(session, input.request_id)
            await session.commit()
        return request.status

    @activity.defn(name="gdpr_mark_cancelled")
    async def mark_cancelled(self, input: GdprWorkflowInput) -> str:
        async with self.sessionmaker() as session:
            requests = RequestRepository(session)
            request_id = uuid.UUID(input.request_id)
            await requests.set_status(request_id, "cancelled", only_from=("pending", "in_grace"))
            request = await _request(session, input.request_id)
            if request.status == "cancelled":
                await ErasureTargetRepository(session).forget(request_id)
            await session.commit()
        return request.status

    @activity.defn(name="gdpr_mark_failed")
    async def mark_failed(self, input: StepInput) -> None:
        async with self.sessionmaker() as session:
            await RequestRepository(session).set_status(
                uuid.UUID(input.request_id),
                "error",
                only_from=("pending", "in_grace", "in_progress"),
                failed_step=input.step,
            )
            await session.commit()

    # --- erasure steps ------------------------------------------------------------------------

    @activity.defn(name="gdpr_freeze")
    async def freeze(self, input: StepInput) -> StepResult:
        """Block login, revoke tokens and keys, cancel what the subject has pending."""

        async def body(session: AsyncSession) -> StepResult:
            request = await _request(session, input.request_id)
            erasure = ErasureRepository(session)
            user = (
                await session.get(User, request.subject_user_id)
                if request.subject_user_id
                else None
            )
            if user is not None:
                await ErasureTargetRepository(session).capture(
                    request.id, user, with_texts=self.settings.anonymise_policy == "tombstone"
                )
            targets = await _targets(session, input.request_id)
            uid = targets.user_id
            counts = {
                "account_frozen": await erasure.freeze_account(uid),
                "api_keys_revoked": await erasure.revoke_api_keys(uid),
                "invitations_cancelled": await erasure.cancel_invitations(uid),
                "referrals_cancelled": await erasure.cancel_referrals(uid),
                "exports_cancelled": await erasure.cancel_exports(uid),
            }
            ids = await erasure.related_workflow_ids(uid)
            return StepResult(step=input.step, counts=counts, workflow_ids=ids)

        return await run_step(self.sessionmaker, input, body, completes_step=False)

    @activity.defn(name="gdpr_anonymise")
    async def anonymise(self, input: StepInput) -> StepResult:
        tombstone = self.settings.anonymise_policy == "tombstone"

        async def body(session: AsyncSession) -> StepResult:
            targets = await _targets(session, input.request_id)
            erasure = ErasureRepository(session)
            counts = {
                "messages": await erasure.anonymise_messages(targets.user_id, tombstone),
                "message_events": await erasure.anonymise_message_events(
                    targets.user_id, tombstone, targets.room_ids
                ),
                # The subject's words go with the replies written for them, and with what
                # agents copied of them (a kept message keeps its replies too).
                "replies_withdrawn": (
                    await erasure.withdraw_replies_for(targets.user_id) if tombstone else 0
                ),
                "copies_redacted": await erasure.redact_copies(targets) if tombstone else 0,
                "mentions": await erasure.unmention(targets.user_id, targets.room_ids),
                "agent_runs": await erasure.forget_agent_runs(targets.user_id),
                "agent_stream_events": await erasure.compact_agent_streams(targets.room_ids),
                "redactions": await erasure.redact_in_rooms(targets),
                "invitations_received": await erasure.forget_invitations_received(targets.email),
            }
            return StepResult(step=input.step, counts=counts)

        return await run_step(self.sessionmaker, input, body)

    @activity.defn(name="gdpr_delete_private")
    async def delete_private(self, input: StepInput) -> StepResult:
        async def body(session: AsyncSession) -> StepResult:
            targets = await _targets(session, input.request_id)
            erasure, uid = ErasureRepository(session), targets.user_id
            archives = await erasure.delete_exports(uid)
            others = await self._withdraw_archives_naming(session, targets)
            files = await AttachmentRepository(session).withdraw_uploaded_by(uid)
            counts = {
                # What agents quoted of their documents and memories, wherever it was used.
                "quotes_of_their_sources": await SourceCopyRepository(session).forget_all_of(uid),
                "attachments": await self._remove_files(uid, [key for _, key in files]),
                "private_rooms": await erasure.delete_private_rooms(uid),
                "memories": await erasure.delete_memories(uid),
                "knowledge_documents": await erasure.delete_knowledge(uid),
                "consents": await erasure.delete_consents(uid),
                "api_keys": await erasure.delete_api_keys(uid),
                "rate_limit_buckets": await erasure.delete_rate_limit_buckets(targets),
                "export_requests": sum(1 for name in archives if name.endswith(".zip")),
                "export_archives": self._remove_archives(archives),
                "others_archives_withdrawn": self._remove_archives(others),
            }
            return StepResult(step=input.step, counts=counts)

        return await run_step(self.sessionmaker, input, body)

    async def _withdraw_archives_naming(self, session: AsyncSession, targets: Targets) -> list[str]:
        """Other people's archives that hold the subject's data: withdrawn (reading every
        archive is disk and CPU work: off the event loop)."""
        needles = Needles.of(
            targets.email, targets.name, str(targets.user_id), targets.fingerprints
        )
        names = await asyncio.to_thread(
            archives_naming, exports_dir(self.settings), needles, str(targets.user_id)
        )
        return await StaleArchiveRepository(session).withdraw_named(names)

    async def _remove_files(self, user_id: uuid.UUID, keys: list[str]) -> int:
        """The subject's attachment bytes: the rows' keys, then anything left under their
        prefix (an upload whose row was lost). A store error fails the step, which retries."""
        prefix = user_prefix(user_id)
        leftovers = await asyncio.to_thread(self.files.keys, prefix)
        for key in dict.fromkeys([*keys, *leftovers]):
            await asyncio.to_thread(self.files.delete, key)
        return len(keys)

    def _remove_archives(self, names: list[str]) -> int:
        removed = 0
        for name in names:
            path = exports_dir(self.settings) / Path(name).name
            if path.exists():
                path.unlink()
                removed += 1
        return removed

    @activity.defn(name="gdpr_delete_account")
    async def delete_account(self, input: StepInput) -> StepResult:
        async def body(session: AsyncSession) -> StepResult:
            targets = await _targets(session, input.request_id)
            erasure = ErasureRepository(session)
            released = await erasure.release_references(targets.user_id)
            counts = {
                "references_released": sum(released.values()),
                "account": await erasure.delete_user(targets.user_id),
                "org": await erasure.tidy_org(targets, default_org_name(targets.name)),
            }
            scrubbed = await ErasureScanRepository(session).scrub_everywhere(targets)
            refused = sorted(k for k in scrubbed if ":failed" in k)
            if refused:
                # The whole step rolls back and is retried; the status says where and why.
                columns = ", ".join(refused)  # table.column:failed:SQLSTATE, never a value
                raise ApplicationError(
                    f"the database refused to scrub {columns}", type="ScrubRefused"
                )
            counts["scrubbed_rows"] = sum(scrubbed.values())
            return StepResult(step=input.step, counts=counts)

        return await run_step(self.sessionmaker, input, body)

    @activity.defn(name="gdpr_audit")
    async def audit(self, input: StepInput) -> StepResult:
        """The PII-free record kept audit_retention_days: ids, pseudonyms, steps, outcomes."""

        async def body(session: AsyncSession) -> StepResult:
            request = await _request(session, input.request_id)
            steps = (await RequestRepository(session).steps([request.id]))[request.id]
            summary = [
                {
                    "step": s.step,
                    "status": s.status if s.step != input.step else "done",
                    "attempts": s.attempts,
                    "counts": s.detail,
                    "finished_at": s.finished_at.isoformat() if s.finished_at else None,
                }
                for s in steps
            ]
            await AuditRepository(session).record(
                request, summary, self.settings.audit_retention_days
            )
            return StepResult(step=input.step, counts={"audit_records": 1})

        return await run_step(self.sessionmaker, input, body)

    @activity.defn(name="gdpr_verify_postgres")
    async def verify_postgres(self, input: StepInput) -> VerificationPart:
        async def body(session: AsyncSession) -> VerificationPart:
            targets = await _targets(session, input.request_id)
            checked, findings, review = await ErasureScanRepository(session).scan(targets)
            return VerificationPart(
                store="postgres",
                checked=checked,
                findings=[
                    FindingOut(location=f.location, needle=f.needle, rows=f.rows) for f in findings
                ],
                review=[
                    FindingOut(location=f.location, needle=f.needle, rows=f.rows) for f in review
                ],
            )

        return await run_step(self.sessionmaker, input, body, completes_step=False)

    @activity.defn(name="gdpr_verify_exports")
    async def verify_exports(self, input: StepInput) -> VerificationPart:
        """Every file in the exports directory: none may hold the subject's archive."""

        async def body(session: AsyncSession) -> VerificationPart:
            targets = await _targets(session, input.request_id)
            needles = Needles.of(
                targets.email, targets.name, str(targets.user_id), targets.fingerprints
            )
            # Unzipping every archive is CPU and disk work: off the event loop.
            checked, findings, review = await asyncio.to_thread(
                scan_exports, exports_dir(self.settings), needles, str(targets.user_id)
            )
            return VerificationPart(
                store="exports", checked=checked, findings=findings, review=review
            )

        return await run_step(self.sessionmaker, input, body, completes_step=False)

    @activity.defn(name="gdpr_verify_files")
    async def verify_files(self, input: StepInput) -> VerificationPart:
        """The file store: nothing may be left under the subject's prefix."""

        async def body(session: AsyncSession) -> VerificationPart:
            targets = await _targets(session, input.request_id)
            left = await asyncio.to_thread(self.files.keys, user_prefix(targets.user_id))
            findings = (
                [FindingOut(location="files:attachments", needle="user_id", rows=len(left))]
                if left
                else []
            )
            return VerificationPart(store="files", checked=1, findings=findings, review=[])

        return await run_step(self.sessionmaker, input, body, completes_step=False)

    @activity.defn(name="gdpr_finish_erasure")
    async def finish_erasure(self, input: FinishErasureInput) -> ErasureResult:
        """Store the verification with a signed receipt; only a clean scan completes the request."""
        request_id = uuid.UUID(input.request_id)
        findings = [f.model_dump() for part in input.parts for f in part.findings]
        review = [f.model_dump() for part in input.parts for f in part.review]
        checked: dict[str, Any] = {part.store: part.checked for part in input.parts}
        verification: dict[str, Any] = {
            "clean": not findings,
            "checked": checked,
            "findings": findings,
            # The name alone where nothing ties it to the subject (e.g. a namesake): to review.
            "review": review,
            "scanned_at": datetime.now(UTC).isoformat(),
        }
        async with self.sessionmaker() as session:
            request = await _request(session, input.request_id)
            audit = AuditRepository(session)
            requests = RequestRepository(session)
            record = await audit.get(request_id)
            document = self._receipt(request, record.steps if record else [], verification)
            signature = receipt.sign(self.settings.secret("erasure_receipt_secret"), document)
            await audit.seal(request_id, verification, document, signature)
            if findings:
                await requests.step_finished(
                    request_id,
                    "verify",
                    "error",
                    detail={"findings": len(findings)},
                    error="traces found; see verification",
                )
                await requests.set_status(
                    request_id, "error", failed_step="verify", verification=verification
                )
            else:
                await requests.step_finished(request_id, "verify", "done", detail=checked)
                await requests.set_status(request_id, "complete", verification=verification)
                await ErasureTargetRepository(session).forget(request_id)
            await ErasureTargetRepository(session).purge_stale()
            await audit.purge_expired()
            await session.commit()
        return ErasureResult(
            request_id=input.request_id,
            status="error" if findings else "complete",
            clean=not findings,
        )

    def _receipt(
        self, request: DataSubjectRequest, steps: list[dict[str, Any]], verification: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "type": "iaf-erasure-receipt",
            "version": 1,
            "request_id": str(request.id),
            "subject_ref": request.subject_ref,
            "org_id": str(request.org_id),
            "requested_via": request.requested_via,
            "requested_by_ref": request.requested_by_ref,
            "requested_at": request.created_at.isoformat(),
            "steps": [
                {"step": s["step"], "status": s["status"], "attempts": s["attempts"]} for s in steps
            ],
            "verification": verification,
            "issued_at": datetime.now(UTC).isoformat(),
        }

    # --- export -------------------------------------------------------------------------------

    @activity.defn(name="gdpr_export_plan")
    async def export_plan(self, input: GdprWorkflowInput) -> ExportPlan:
        async with self.sessionmaker() as session:
            request = await _request(session, input.request_id)
        return ExportPlan(status=request.status, retry=self._retry())

    @activity.defn(name="gdpr_export_archive")
    async def export_archive(self, input: StepInput) -> ExportResult:
        """Gather, validate against the schema, write data_dir/exports/<request id>.zip."""
        link_days = timedelta(days=self.settings.export_link_days)

        async def body(session: AsyncSession) -> ExportResult:
            request = await _request(session, input.request_id)
            requests = RequestRepository(session)
            if request.status == "cancelled" or request.subject_user_id is None:
                return ExportResult(request_id=input.request_id, status="cancelled")
            if await requests.erasure_underway(request.subject_user_id):
                await requests.set_status(
                    request.id, "cancelled", only_from=("pending", "in_progress", "error")
                )
                return ExportResult(request_id=input.request_id, status="cancelled")
            await requests.set_status(request.id, "in_progress", only_from=("pending", "error"))
            name = f"{request.id}.zip"
            size = await self._write_current(session, request, exports_dir(self.settings) / name)
            expires = datetime.now(UTC) + link_days
            if not await requests.set_status(
                request.id,
                "complete",
                only_from=("pending", "in_progress", "error"),
                archive_name=name,
                archive_bytes=size,
                archive_expires_at=expires,
            ):  # cancelled (or erased) while we were writing
                self._remove_archives([name])
                return ExportResult(request_id=input.request_id, status="cancelled")
            return ExportResult(
                request_id=input.request_id,
                status="complete",
                archive_bytes=size,
                expires_in_seconds=link_days.total_seconds(),
            )

        return await run_step(
            self.sessionmaker, input, body, detail=lambda r: {"archive_bytes": r.archive_bytes}
        )

    async def _write_current(
        self, session: AsyncSession, request: DataSubjectRequest, path: Path
    ) -> int:
        """Write the archive; again when a message was edited or deleted while it was being
        written (it would hold the old text). Gives up for now, retryably, after a few."""
        exports = ExportRepository(session)
        assert request.subject_user_id is not None
        for _ in range(EXPORT_WRITES):
            before = await exports.messages_version(request.subject_user_id)
            document = await self._document(session, request)
            stored = document["sections"].get("attachments", [])
            size = await asyncio.to_thread(
                write_archive,
                document,
                path,
                all_markdown(self.settings),
                self._attachment_files(stored, request.subject_user_id),
            )
            if await exports.messages_version(request.subject_user_id) == before:
                return size
        self._remove_archives([path.name])
        raise ApplicationError(
            "the subject's messages kept changing while the archive was written",
            type="ExportChanging",
        )

    async def _document(self, session: AsyncSession, request: DataSubjectRequest) -> dict[str, Any]:
        exports = ExportRepository(session)
        assert request.subject_user_id is not None
        subject = await exports.subject(request.subject_user_id)
        if subject is None:
            raise ApplicationError(
                "subject no longer exists", type="SubjectGone", non_retryable=True
            )
        sections, unavailable = await exports.sections(
            request.subject_user_id, str(subject["email"])
        )
        balance = (
            0
            if "ledger_entries" in unavailable
            else await exports.ledger_balance(request.subject_user_id)
        )
        return {
            "format": FORMAT,
            "version": VERSION,
            "request_id": str(request.id),
            "generated_at": datetime.now(UTC).isoformat(),
            "subject": subject,
            "information": art15_information(self.settings),
            "sections": sections,
            "ledger_balance": balance,
            "unavailable_sections": unavailable,
        }

    def _attachment_files(
        self, stored: list[dict[str, Any]], user_id: uuid.UUID
    ) -> Iterator[tuple[str, bytes]]:
        """Read lazily by the archive writer (in its thread): one file in memory at a time."""
        prefix = user_prefix(user_id)
        for record in stored:
            yield str(record["file"]), self.files.get(f"{prefix}{record['id']}")

    @activity.defn(name="gdpr_export_expire")
    async def export_expire(self, input: GdprWorkflowInput) -> bool:
        """The link period is over: the archive file goes; the request row stays as a record."""
        async with self.sessionmaker() as session:
            request = await RequestRepository(session).get(uuid.UUID(input.request_id))
            if request is None or request.archive_name is None:
                return False
            self._remove_archives([request.archive_name])
            request.archive_deleted_at = datetime.now(UTC)
            await session.commit()
        return True

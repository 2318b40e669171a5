"""Every call the project makes to start, signal or cancel one of its workflows.

The IDs (business keys, DESIGN rule 3), the search attributes and the calls that carry them
live here and nowhere else. Workflows are named by their type name, so neither the API nor
an activity imports a workflow class (`tests/workers/test_registry.py` checks the names
against the classes the worker registers). Inputs, IDs, summaries and search attributes
carry IDs and pseudonyms only (rule 2).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any, Literal

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from iaf.search_attributes import AGENT_ID, DUE_AT, KIND, REQUEST_ID, ROOM_ID, SUBJECT_REF
from iaf.security import pseudonym
from iaf.settings import Settings
from schemas.agents import AgentReplyInput
from schemas.auth import PasswordResetInput
from schemas.crawl import CrawlInput
from schemas.gdpr import GdprWorkflowInput
from schemas.invitations import InvitationInput, ReferralInput, ResendRequest
from schemas.knowledge import VectorJob, VectorKind
from schemas.notifications import DigestInput
from schemas.profile import EmailChangeMail
from schemas.team import TeamReplyInput
from schemas.workflows import RouteMessageInput

log = logging.getLogger(__name__)
RPC_TIMEOUT = timedelta(seconds=5)
# How much longer than the start timeout a request waits for all its starts together.
START_DEADLINE_MARGIN_SECONDS = 0.25

# Workflow type names, as registered by the worker (the class names in workflows/).
ROUTE_MESSAGE = "RouteMessage"
AGENT_REPLY = "AgentReply"
INGEST_KNOWLEDGE = "IngestKnowledge"
INDEX_MEMORY = "IndexMemory"
REMOVE_VECTORS = "RemoveVectors"
INVITATION = "Invitation"
REFERRAL = "Referral"
DATA_EXPORT = "DataExport"
ERASURE = "Erasure"
EMAIL_CHANGE_MAIL = "EmailChangeMail"
PASSWORD_RESET = "PasswordReset"
CRAWL_KNOWLEDGE = "CrawlKnowledge"
TEAM_REPLY = "TeamReply"
NOTIFICATION_DIGEST = "NotificationDigest"
WORKFLOW_TYPES = frozenset(
    {
        ROUTE_MESSAGE,
        AGENT_REPLY,
        INGEST_KNOWLEDGE,
        INDEX_MEMORY,
        REMOVE_VECTORS,
        INVITATION,
        REFERRAL,
        DATA_EXPORT,
        ERASURE,
        EMAIL_CHANGE_MAIL,
        PASSWORD_RESET,
        CRAWL_KNOWLEDGE,
        TEAM_REPLY,
        NOTIFICATION_DIGEST,
    }
)


# --- workflow IDs -------------------------------------------------------------------------


def route_workflow_id(message_id: int) -> str:
    return f"route-{message_id}"


def reply_workflow_id(message_id: int, agent_id: str) -> str:
    """Also the reply id: one reply per (message, agent), whoever asks to start it."""
    return f"reply-{message_id}-{agent_id}"


def team_workflow_id(message_id: int) -> str:
    """TeamReply's id, also its synthesis's reply id: one team answer per message."""
    return f"team-{message_id}"


def team_part_id(message_id: int, agent_id: str) -> str:
    """One panel member's answer inside a team answer (an agent_runs row, not a workflow)."""
    return f"team-{message_id}-{agent_id}"


def vector_workflow_id(job: VectorJob, removal: bool = False) -> str:
    """ingest-{document_id}, memory-{memory_id}; unindex-{kind}-{id} for removals."""
    if removal:
        return f"unindex-{job.kind}-{job.item_id}"
    return f"ingest-{job.item_id}" if job.kind == "document" else f"memory-{job.item_id}"


def invitation_workflow_id(invitation_id: uuid.UUID | str) -> str:
    return f"invitation-{invitation_id}"


def referral_workflow_id(referral_id: uuid.UUID | str) -> str:
    return f"referral-{referral_id}"


def gdpr_workflow_id(kind: str, request_id: uuid.UUID | str) -> str:
    """`export-{request_id}` / `erasure-{request_id}`: random IDs, never the subject's."""
    return f"{kind}-{request_id}"


# --- search attributes --------------------------------------------------------------------


def subject_ref(settings: Settings, user_id: uuid.UUID | str) -> str:
    """The non-personal SubjectRef search attribute GDPR erasure finds a user's workflows by."""
    return pseudonym(settings.secret("pseudonym_secret"), user_id)


def search_attributes(
    kind: str,
    subject: str | None,
    *,
    room_id: uuid.UUID | str | None = None,
    agent_id: str | None = None,
    request_id: uuid.UUID | str | None = None,
    due_at: datetime | None = None,
) -> TypedSearchAttributes:
    """Kind, SubjectRef (already a pseudonym) and whichever IDs the workflow is about."""
    pairs: list[SearchAttributePair[Any]] = [SearchAttributePair(KIND, kind)]
    if subject is not None:
        pairs.append(SearchAttributePair(SUBJECT_REF, subject))
    if room_id is not None:
        pairs.append(SearchAttributePair(ROOM_ID, str(room_id)))
    if agent_id is not None:
        pairs.append(SearchAttributePair(AGENT_ID, agent_id))
    if request_id is not None:
        pairs.append(SearchAttributePair(REQUEST_ID, str(request_id)))
    if due_at is not None:
        pairs.append(SearchAttributePair(DUE_AT, due_at))
    return TypedSearchAttributes(pairs)


# --- chat and agents ----------------------------------------------------------------------


async def started_once(start: Awaitable[object]) -> bool:
    """True when the workflow starts now; False when one with its ID exists already (the ID
    is the business key: a second start of the same thing is refused, not run twice)."""
    try:
        await start
    except WorkflowAlreadyStartedError:
        return False
    return True


async def start_route_message(
    client: Client,
    settings: Settings,
    message_id: int,
    room_id: str,
    sender_id: uuid.UUID | str | None = None,
) -> bool:
    """Start RouteMessage for a message; True if started now, False if a run exists already.

    A run that failed, timed out or was terminated is started again (the sweep relies on it);
    a running or completed one is refused. With the sender, the workflow carries SubjectRef
    so GDPR erasure finds it.
    """
    subject = subject_ref(settings, sender_id) if sender_id is not None else None
    return await started_once(
        client.start_workflow(
            ROUTE_MESSAGE,
            RouteMessageInput(message_id=message_id),
            id=route_workflow_id(message_id),
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            search_attributes=search_attributes("route", subject, room_id=room_id),
            static_summary=f"route message {message_id}",
            static_details=(
                f"Message {message_id} in room {room_id}: record its mentions, notify the people"
                " it mentions, and start one AgentReply per agent it mentions (or the agent the"
                " room's auto-routing picks)."
            ),
            rpc_timeout=timedelta(seconds=settings.temporal_start_timeout_seconds),
        )
    )


async def route_status(client: Client, message_id: int) -> WorkflowExecutionStatus | None:
    """The status of a message's RouteMessage run (None if Temporal gives none)."""
    description = await client.get_workflow_handle(route_workflow_id(message_id)).describe(
        rpc_timeout=RPC_TIMEOUT
    )
    return description.status


async def start_agent_reply(
    client: Client, settings: Settings, input: AgentReplyInput, *, eager: bool = True
) -> bool:
    """Start one reply; True if started now, False if this reply id already exists.

    `eager` only takes effect when `client` is the client a worker of this task queue runs
    on (the worker's local activities); from elsewhere the server ignores the request.
    """
    expected = reply_workflow_id(input.message_id, input.agent_id)
    if input.reply_id != expected:
        raise ValueError(f"reply_id must be {expected!r}")
    details = (
        f"@{input.agent_id} answers message {input.message_id} in room {input.room_id}"
        f" (hand-off depth {input.depth}). Steps: reserving credits, building context,"
        " streaming the answer, storing the reply, settling credits, handing off."
    )
    if input.parent_reply_id:
        details += f" Handed over by {input.parent_reply_id}."
    return await started_once(
        client.start_workflow(
            AGENT_REPLY,
            input,
            id=input.reply_id,
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes(
                "agent-reply",
                subject_ref(settings, input.requested_by),
                room_id=input.room_id,
                agent_id=input.agent_id,
            ),
            static_summary=f"@{input.agent_id} replies to message {input.message_id}",
            static_details=details,
            request_eager_start=eager,
            rpc_timeout=RPC_TIMEOUT,
        )
    )


async def cancel_reply(client: Client, reply_id: str) -> None:
    """Ask a running AgentReply (or a TeamReply, by its team id) to stop; each answer it runs
    releases or settles its credits and emits agent.error."""
    await client.get_workflow_handle(reply_id).cancel(rpc_timeout=RPC_TIMEOUT)


async def start_mentioned_replies(
    client: Client,
    settings: Settings,
    message_id: int,
    room_id: str,
    sender_id: uuid.UUID,
    content: str,
) -> list[str]:
    """From the API, right after a post: start the replies of the agents the text mentions.

    The pure mention parser is cheap and needs no I/O, so the reply starts in parallel with
    RouteMessage instead of after it. RouteMessage still records the mentions and starts
    the same reply ids, which Temporal then refuses as duplicates: nothing runs twice.

    Measured (2 shared cores, dev server, in-process worker, 8 replies each, medians from
    the room_events timestamps): posted message -> agent.start 66-78 ms with this start vs
    100-116 ms through RouteMessage's eager local-activity start alone; -> first agent.delta
    200-224 ms vs 213-260 ms. Settings.api_starts_replies turns it off.
    """
    from iaf.agents.mentions import mentioned_agents, parse_mentions
    from iaf.agents.registry import get_registry
    from iaf.agents.team import team_panel

    registry = get_registry()
    mentions = parse_mentions(content, registry.names())
    panel = team_panel(
        content, mentions, settings.team_default_agents, registry.ids(), settings.team_max_agents
    )
    if panel is not None:
        team = TeamReplyInput(
            team_id=team_workflow_id(message_id),
            message_id=message_id,
            room_id=room_id,
            requested_by=str(sender_id),
            agent_ids=panel,
            synthesizer_id=team_synthesizer(settings, panel),
        )
        started_team = await start_team_reply(client, settings, team, eager=False)
        return [team.team_id] if started_team else []
    inputs = [
        AgentReplyInput(
            reply_id=reply_workflow_id(message_id, agent_id),
            message_id=message_id,
            room_id=room_id,
            agent_id=agent_id,
            requested_by=str(sender_id),
        )
        for agent_id in mentioned_agents(mentions)
    ]
    # In parallel: each start waits up to the start timeout, so in sequence a message
    # mentioning three agents kept its POST three timeouts long while Temporal stalled.
    outcomes = await asyncio.gather(
        *(start_agent_reply(client, settings, input, eager=False) for input in inputs)
    )
    return [input.reply_id for input, started in zip(inputs, outcomes, strict=True) if started]


async def within_start_timeout(settings: Settings, label: str, *starts: Awaitable[object]) -> None:
    """Run every start a request makes at once and wait for them together, at most about
    `temporal_start_timeout_seconds` (DESIGN rule 5: what was stored is acknowledged; a start
    that did not happen now is left to the sweep). Each guarded call times out on its own
    first, which tells the guard; the margin only bounds calls the guard does not time."""
    tasks = [asyncio.ensure_future(start) for start in starts]
    if not tasks:
        return
    done, pending = await asyncio.wait(
        tasks, timeout=settings.temporal_start_timeout_seconds + START_DEADLINE_MARGIN_SECONDS
    )
    for task in pending:
        task.cancel()
    for task in done:
        error = task.exception()
        if error is not None:
            reason = type(error).__name__
            log.warning("%s: a workflow start failed now (%s); the sweep will retry", label, reason)
    if pending:
        log.warning("%s: %d workflow starts still waiting were cancelled", label, len(pending))


def team_synthesizer(settings: Settings, panel: list[str]) -> str:
    """The agent that writes the team's one answer: the setting's, else the panel's first."""
    from iaf.agents.registry import get_registry

    wanted = settings.team_synthesizer_agent
    return wanted if wanted in get_registry().ids() else panel[0]


async def start_team_reply(
    client: Client, settings: Settings, input: TeamReplyInput, *, eager: bool = True
) -> bool:
    """Start a message's team answer; False when it exists already (RouteMessage and the API
    both start it, and one of them is refused)."""
    if input.team_id != team_workflow_id(input.message_id):
        raise ValueError(f"team_id must be {team_workflow_id(input.message_id)!r}")
    agents = ", ".join(f"@{a}" for a in input.agent_ids)
    return await started_once(
        client.start_workflow(
            TEAM_REPLY,
            input,
            id=input.team_id,
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes(
                "team-reply",
                subject_ref(settings, input.requested_by),
                room_id=input.room_id,
                agent_id=input.synthesizer_id,
            ),
            static_summary=f"{agents} answer message {input.message_id} together",
            static_details=(
                f"{agents} answer message {input.message_id} in room {input.room_id} in"
                f" parallel (parts team-{input.message_id}-<agent>, each with its own credits"
                f" and retries), then @{input.synthesizer_id} writes one answer from theirs."
                " Cancelling it cancels every part."
            ),
            request_eager_start=eager,
            rpc_timeout=RPC_TIMEOUT,
        )
    )


async def start_vector_job(
    client: Client,
    settings: Settings,
    kind: VectorKind,
    item_id: uuid.UUID,
    owner_id: uuid.UUID,
    *,
    removal: bool = False,
    room_id: uuid.UUID | None = None,
) -> bool:
    """Start IngestKnowledge / IndexMemory, or RemoveVectors; False if one is running."""
    job = VectorJob(
        kind=kind, item_id=item_id, retrieval_task_queue=settings.temporal_retrieval_task_queue
    )
    if removal:
        workflow, label = REMOVE_VECTORS, "unindex"
    elif kind == "document":
        workflow, label = INGEST_KNOWLEDGE, "ingest"
    else:
        workflow, label = INDEX_MEMORY, "memory"
    return await started_once(
        client.start_workflow(
            workflow,
            job,
            id=vector_workflow_id(job, removal),
            task_queue=settings.temporal_task_queue,
            # One open run per item; a closed one may run again (a failed ingestion retried).
            # The row's status makes a rerun of a finished job a no-op.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=search_attributes(
                label, subject_ref(settings, owner_id), room_id=room_id
            ),
            static_summary=f"{'remove' if removal else label} {kind} {item_id}",
            static_details=_vector_details(kind, item_id, removal),
            rpc_timeout=RPC_TIMEOUT,
        )
    )


def _vector_details(kind: str, item_id: uuid.UUID, removal: bool) -> str:
    if removal:
        return f"Delete the Qdrant points of {kind} {item_id}; it is already out of every context."
    if kind == "document":
        return (
            f"Chunk, embed and store knowledge document {item_id} in Qdrant; its status"
            " (knowledge_documents) goes processing -> ready, or failed: the run then fails too."
        )
    return f"Embed and store memory {item_id} in Qdrant."


async def best_effort(label: str, start: Awaitable[bool]) -> bool:
    """Await a start; log and return False when Temporal is away (a sweep retries later)."""
    try:
        return await start
    except Exception as exc:
        log.warning("%s not started now (%s); it will be resumed", label, type(exc).__name__)
        return False


# --- invitations and referrals ------------------------------------------------------------


async def start_invitation(
    client: Client,
    settings: Settings,
    invitation_id: uuid.UUID,
    room_id: uuid.UUID,
    inviter_id: uuid.UUID,
) -> bool:
    """Start once per invitation; False when it was already started (or has finished)."""
    return await started_once(
        client.start_workflow(
            INVITATION,
            InvitationInput(invitation_id=invitation_id),
            id=invitation_workflow_id(invitation_id),
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes(
                "invitation", subject_ref(settings, inviter_id), room_id=room_id
            ),
            static_summary=f"invitation {invitation_id} to room {room_id}",
            static_details=(
                "Send the invitation mail (recipient kept in PostgreSQL only), send a reminder"
                " before expiry, wait for accept or revoke until the expiry timer, then close the"
                " invitation and start the referral."
            ),
            rpc_timeout=RPC_TIMEOUT,
        )
    )


async def invitation_started(
    client: Client, invitation_id: uuid.UUID, within_seconds: float
) -> bool:
    """After a start ran out of time: did Temporal start the workflow all the same?"""
    handle = client.get_workflow_handle(invitation_workflow_id(invitation_id))
    try:
        async with asyncio.timeout(within_seconds):
            await handle.describe()
    except Exception:
        return False
    return True


async def notify_invitation(
    client: Client, invitation_id: uuid.UUID, signal: Literal["accepted", "revoked"]
) -> bool:
    """Best effort: the row is already closed, and the workflow re-reads it at its next timer."""
    try:
        await client.get_workflow_handle(invitation_workflow_id(invitation_id)).signal(
            signal, rpc_timeout=RPC_TIMEOUT
        )
    except Exception as exc:
        log.warning(
            "invitation %s: %s signal not delivered (%s)", invitation_id, signal, type(exc).__name__
        )
        return False
    return True


async def request_resend(client: Client, invitation_id: uuid.UUID, seq: int) -> None:
    await client.get_workflow_handle(invitation_workflow_id(invitation_id)).signal(
        "resend", ResendRequest(seq=seq), rpc_timeout=RPC_TIMEOUT
    )


async def _start_referral(
    client: Client,
    settings: Settings,
    referral_id: uuid.UUID,
    referred_user_id: uuid.UUID,
    start_signal: str | None,
) -> None:
    await client.start_workflow(
        REFERRAL,
        ReferralInput(referral_id=referral_id),
        id=referral_workflow_id(referral_id),
        task_queue=settings.temporal_task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=search_attributes("referral", subject_ref(settings, referred_user_id)),
        static_summary=f"referral {referral_id}: credits once the invited user acts",
        static_details=(
            "Wait for the invited user's first action (signal, or a re-read of the row) until"
            " the deadline; then grant the referrer's credits once, or expire."
        ),
        start_signal=start_signal,
        rpc_timeout=RPC_TIMEOUT,
    )


async def start_referral(
    client: Client, settings: Settings, referral_id: uuid.UUID, referred_user_id: uuid.UUID
) -> bool:
    try:
        await _start_referral(client, settings, referral_id, referred_user_id, None)
    except WorkflowAlreadyStartedError:
        return False
    return True


async def signal_first_action(
    client: Client, settings: Settings, referral_id: uuid.UUID, referred_user_id: uuid.UUID
) -> bool:
    """Signal-with-start, so the first action also starts a Referral that was never started.

    Best effort: first_action_at is already committed, and a waiting Referral re-reads it.
    """
    try:
        await _start_referral(client, settings, referral_id, referred_user_id, "first_action")
    except WorkflowAlreadyStartedError:
        return False  # already decided and closed: nothing left to tell it
    except Exception as exc:
        log.warning(
            "referral %s: first action not signalled now (%s)", referral_id, type(exc).__name__
        )
        return False
    return True


# --- accounts -------------------------------------------------------------------------------


def password_reset_workflow_id(reset_id: uuid.UUID | str) -> str:
    return f"password-reset-{reset_id}"


async def start_password_reset(
    client: Client, settings: Settings, reset_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """Mail the link and hold its expiry (workflows/password_reset.py)."""
    await client.start_workflow(
        PASSWORD_RESET,
        PasswordResetInput(reset_id=reset_id),
        id=password_reset_workflow_id(reset_id),
        task_queue=settings.temporal_task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=search_attributes("password_reset", subject_ref(settings, user_id)),
        static_summary=f"password reset {reset_id}",
        rpc_timeout=RPC_TIMEOUT,
    )


# --- GDPR requests ------------------------------------------------------------------------


async def start_gdpr_request(
    client: Client,
    settings: Settings,
    kind: str,
    request_id: uuid.UUID,
    subject: str,
    due_at: datetime | None = None,
) -> bool:
    """Start (or, for a retry, start again) a request's workflow; False if a run is open.

    `subject` is the request's stored SubjectRef (the subject row may be gone already);
    `due_at`, its legal deadline, becomes the DueAt search attribute.
    """
    due = f", due {due_at:%Y-%m-%d}" if due_at is not None else ""
    steps = (
        "grace period (cancellable), freeze, anonymise, delete private data, delete vectors,"
        " delete workflows, delete account, audit, verify"
        if kind == "erasure"
        else "build the JSON + CSV archive, then keep the download link open until it expires"
    )
    return await started_once(
        client.start_workflow(
            ERASURE if kind == "erasure" else DATA_EXPORT,
            GdprWorkflowInput(request_id=str(request_id)),
            id=gdpr_workflow_id(kind, request_id),
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=search_attributes(
                kind, subject, request_id=request_id, due_at=due_at
            ),
            static_summary=f"GDPR {kind} request {request_id}{due}",
            static_details=f"Steps: {steps}. Each step's attempts are in PostgreSQL"
            " (data_subject_request_steps); a failed request is retried from the API or CLI.",
            rpc_timeout=RPC_TIMEOUT,
        )
    )


async def gdpr_request_is_running(client: Client, kind: str, request_id: uuid.UUID | str) -> bool:
    handle = client.get_workflow_handle(gdpr_workflow_id(kind, request_id))
    try:
        description = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return description.status == WorkflowExecutionStatus.RUNNING


async def wake_cancelled_gdpr_request(client: Client, kind: str, request_id: uuid.UUID) -> None:
    """PostgreSQL already holds the cancellation; this ends the grace timer (or export) now."""
    handle = client.get_workflow_handle(gdpr_workflow_id(kind, request_id))
    try:
        if kind == "erasure":
            await handle.signal("cancel", rpc_timeout=RPC_TIMEOUT)
        else:
            await handle.cancel(rpc_timeout=RPC_TIMEOUT)
    except Exception as exc:
        log.info(
            "cancel of %s not delivered (%s); the workflow reads it from the database",
            request_id,
            type(exc).__name__,
        )


async def start_gdpr_retry(
    client: Client,
    settings: Settings,
    kind: str,
    request_id: uuid.UUID,
    subject: str,
    due_at: datetime | None = None,
) -> bool:
    """The failed run may still be closing (it records the failure, then fails): wait for it."""
    for _ in range(20):
        if await start_gdpr_request(client, settings, kind, request_id, subject, due_at):
            return True
        await asyncio.sleep(0.25)
    return False


# --- account ------------------------------------------------------------------------------


def email_change_workflow_id(change_id: uuid.UUID | str) -> str:
    return f"email-change-{change_id}"


async def start_email_change_mail(
    client: Client, settings: Settings, change_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """Mail the confirmation link of a new address (once per change)."""
    try:
        await client.start_workflow(
            EMAIL_CHANGE_MAIL,
            EmailChangeMail(email_change_id=change_id),
            id=email_change_workflow_id(change_id),
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes("email_change", subject_ref(settings, user_id)),
            static_summary=f"e-mail change {change_id}",
            rpc_timeout=RPC_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:
        return


# --- knowledge from the web -----------------------------------------------------------------


def crawl_workflow_id(source_id: uuid.UUID | str) -> str:
    return f"crawl-{source_id}"


async def start_crawl(
    client: Client,
    settings: Settings,
    source_id: uuid.UUID,
    owner_id: uuid.UUID,
    room_id: uuid.UUID | None = None,
) -> bool:
    """Crawl a source now: signal-with-start, so a source waiting for its next re-crawl is
    woken and one whose workflow has ended (a one-off crawl, a failure) starts again."""
    await client.start_workflow(
        CRAWL_KNOWLEDGE,
        CrawlInput(
            source_id=source_id, retrieval_task_queue=settings.temporal_retrieval_task_queue
        ),
        id=crawl_workflow_id(source_id),
        task_queue=settings.temporal_task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=search_attributes(
            "crawl", subject_ref(settings, owner_id), room_id=room_id
        ),
        static_summary=f"crawl knowledge source {source_id}",
        static_details=(
            f"Knowledge source {source_id} (URL in PostgreSQL, knowledge_sources): read"
            " robots.txt, list the pages (one, or a sitemap's), fetch each within the allowed"
            " hosts and limits, store changed pages as documents and ingest them; then wait for"
            " the next re-crawl if the source has one."
        ),
        start_signal="crawl_now",
        rpc_timeout=RPC_TIMEOUT,
    )
    return True


async def stop_crawl(client: Client, source_id: uuid.UUID) -> None:
    """The source is deleted: its workflow (crawling or waiting) is cancelled, best effort."""
    try:
        await client.get_workflow_handle(crawl_workflow_id(source_id)).cancel(
            rpc_timeout=RPC_TIMEOUT
        )
    except Exception as exc:
        log.info(
            "crawl %s not cancelled (%s); it ends when it finds no source",
            source_id,
            type(exc).__name__,
        )


# --- notifications ------------------------------------------------------------------------


def digest_workflow_id(user_id: uuid.UUID | str) -> str:
    """One digest workflow per person: it runs while they have notifications waiting."""
    return f"digest-{user_id}"


async def signal_digest(client: Client, settings: Settings, user_id: uuid.UUID) -> None:
    """Signal-with-start: wakes the person's digest, or starts it when none is running. The
    notification rows are committed first, so a digest that starts or wakes finds them."""
    await client.start_workflow(
        NOTIFICATION_DIGEST,
        DigestInput(
            user_id=user_id,
            delay_seconds=settings.notification_digest_delay_seconds,
            window_minutes=settings.notification_digest_minutes,
        ),
        id=digest_workflow_id(user_id),
        task_queue=settings.temporal_task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=search_attributes("digest", subject_ref(settings, user_id)),
        static_summary=f"notification digest for user {user_id}",
        static_details=(
            "Waits a moment so that what happens together is sent together, then at most one"
            f" e-mail every {settings.notification_digest_minutes:g} minutes while"
            " notifications are waiting (notifications, notification_digests); ends when none is."
        ),
        start_signal="queued",
        rpc_timeout=RPC_TIMEOUT,
    )

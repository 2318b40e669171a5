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
from datetime import timedelta
from typing import Literal

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from iaf.search_attributes import AGENT_ID, KIND, REQUEST_ID, ROOM_ID, SUBJECT_REF
from iaf.security import pseudonym
from iaf.settings import Settings
from schemas.agents import AgentReplyInput
from schemas.gdpr import GdprWorkflowInput
from schemas.invitations import InvitationInput, ReferralInput, ResendRequest
from schemas.knowledge import VectorJob, VectorKind
from schemas.workflows import RouteMessageInput

log = logging.getLogger(__name__)
RPC_TIMEOUT = timedelta(seconds=5)

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
    }
)


# --- workflow IDs -------------------------------------------------------------------------


def route_workflow_id(message_id: int) -> str:
    return f"route-{message_id}"


def reply_workflow_id(message_id: int, agent_id: str) -> str:
    """Also the reply id: one reply per (message, agent), whoever asks to start it."""
    return f"reply-{message_id}-{agent_id}"


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
) -> TypedSearchAttributes:
    """Kind, SubjectRef (already a pseudonym) and whichever IDs the workflow is about."""
    pairs: list[SearchAttributePair[str]] = [SearchAttributePair(KIND, kind)]
    if subject is not None:
        pairs.append(SearchAttributePair(SUBJECT_REF, subject))
    if room_id is not None:
        pairs.append(SearchAttributePair(ROOM_ID, str(room_id)))
    if agent_id is not None:
        pairs.append(SearchAttributePair(AGENT_ID, agent_id))
    if request_id is not None:
        pairs.append(SearchAttributePair(REQUEST_ID, str(request_id)))
    return TypedSearchAttributes(pairs)


# --- chat and agents ----------------------------------------------------------------------


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
    try:
        await client.start_workflow(
            ROUTE_MESSAGE,
            RouteMessageInput(message_id=message_id),
            id=route_workflow_id(message_id),
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            search_attributes=search_attributes("route", subject, room_id=room_id),
            static_summary=f"route message {message_id}",
            rpc_timeout=timedelta(seconds=settings.temporal_start_timeout_seconds),
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


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
    details = f"room {input.room_id}; depth {input.depth}"
    if input.parent_reply_id:
        details += f"; handed over by {input.parent_reply_id}"
    try:
        await client.start_workflow(
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
    except WorkflowAlreadyStartedError:
        return False
    return True


async def cancel_reply(client: Client, reply_id: str) -> None:
    """Ask a running AgentReply to stop; it settles its credits and emits agent.error."""
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

    started = []
    for agent_id in mentioned_agents(parse_mentions(content, get_registry().ids())):
        input = AgentReplyInput(
            reply_id=reply_workflow_id(message_id, agent_id),
            message_id=message_id,
            room_id=room_id,
            agent_id=agent_id,
            requested_by=str(sender_id),
        )
        if await start_agent_reply(client, settings, input, eager=False):
            started.append(input.reply_id)
    return started


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
    try:
        await client.start_workflow(
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
            static_summary=f"{'remove' if removal else 'index'} {kind} {item_id}",
            rpc_timeout=RPC_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


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
    try:
        await client.start_workflow(
            INVITATION,
            InvitationInput(invitation_id=invitation_id),
            id=invitation_workflow_id(invitation_id),
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes(
                "invitation", subject_ref(settings, inviter_id), room_id=room_id
            ),
            static_summary=f"invitation {invitation_id} to room {room_id}",
            rpc_timeout=RPC_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


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


# --- GDPR requests ------------------------------------------------------------------------


async def start_gdpr_request(
    client: Client,
    settings: Settings,
    kind: str,
    request_id: uuid.UUID,
    subject: str,
) -> bool:
    """Start (or, for a retry, start again) a request's workflow; False if a run is open.

    `subject` is the request's stored SubjectRef (the subject row may be gone already).
    """
    try:
        await client.start_workflow(
            ERASURE if kind == "erasure" else DATA_EXPORT,
            GdprWorkflowInput(request_id=str(request_id)),
            id=gdpr_workflow_id(kind, request_id),
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=search_attributes(kind, subject, request_id=request_id),
            static_summary=f"GDPR {kind} request {request_id}",
            rpc_timeout=RPC_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


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
    client: Client, settings: Settings, kind: str, request_id: uuid.UUID, subject: str
) -> bool:
    """The failed run may still be closing (it records the failure, then fails): wait for it."""
    for _ in range(20):
        if await start_gdpr_request(client, settings, kind, request_id, subject):
            return True
        await asyncio.sleep(0.25)
    return False

"""Starting and signalling Invitation and Referral workflows by their business-key IDs.

Shared by the API and by activities; inputs and signals carry IDs only (DESIGN rule 2).
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Literal

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from iaf.schemas.invitations import InvitationInput, ReferralInput, ResendRequest
from iaf.search_attributes import KIND, ROOM_ID, SUBJECT_REF
from iaf.security import pseudonym
from iaf.settings import Settings

log = logging.getLogger(__name__)
RPC_TIMEOUT = timedelta(seconds=5)


def invitation_workflow_id(invitation_id: uuid.UUID | str) -> str:
    return f"invitation-{invitation_id}"


def referral_workflow_id(referral_id: uuid.UUID | str) -> str:
    return f"referral-{referral_id}"


def _attributes(
    settings: Settings, kind: str, subject_id: uuid.UUID, room_id: uuid.UUID | None = None
) -> TypedSearchAttributes:
    """Kind, RoomId and SubjectRef (a pseudonym: GDPR erasure finds the workflow by it)."""
    pairs = [
        SearchAttributePair(KIND, kind),
        SearchAttributePair(
            SUBJECT_REF, pseudonym(settings.secret("pseudonym_secret"), subject_id)
        ),
    ]
    if room_id is not None:
        pairs.append(SearchAttributePair(ROOM_ID, str(room_id)))
    return TypedSearchAttributes(pairs)


async def start_invitation(
    client: Client,
    settings: Settings,
    invitation_id: uuid.UUID,
    room_id: uuid.UUID,
    inviter_id: uuid.UUID,
) -> bool:
    """Start once per invitation; False when it was already started (or has finished)."""
    from iaf.workflows.invitation import Invitation

    try:
        await client.start_workflow(
            Invitation.run,
            InvitationInput(invitation_id=invitation_id),
            id=invitation_workflow_id(invitation_id),
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=_attributes(settings, "invitation", inviter_id, room_id),
            static_summary=f"invitation {invitation_id} to room {room_id}",
            rpc_timeout=RPC_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:
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
    from iaf.workflows.referral import Referral

    await client.start_workflow(
        Referral.run,
        ReferralInput(referral_id=referral_id),
        id=referral_workflow_id(referral_id),
        task_queue=settings.temporal_task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=_attributes(settings, "referral", referred_user_id),
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

"""Connecting to Temporal and starting workflows by their business-key IDs (rule 3)."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError

from iaf.search_attributes import KIND, ROOM_ID, SUBJECT_REF
from iaf.security import pseudonym
from iaf.settings import Settings

log = logging.getLogger(__name__)


async def connect(settings: Settings, lazy: bool = False) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        lazy=lazy,
    )


def route_workflow_id(message_id: int) -> str:
    return f"route-{message_id}"


async def start_route_message(
    client: Client,
    settings: Settings,
    message_id: int,
    room_id: str,
    sender_id: uuid.UUID | str | None = None,
) -> bool:
    """Start RouteMessage once per message; True if started now, False if it already ran.

    With the sender, the workflow carries SubjectRef (a pseudonym) so GDPR erasure finds it.
    """
    from iaf.schemas.workflows import RouteMessageInput
    from iaf.workflows.route_message import RouteMessage

    attributes: list[SearchAttributePair[str]] = [
        SearchAttributePair(ROOM_ID, room_id),
        SearchAttributePair(KIND, "route"),
    ]
    if sender_id is not None:
        secret = settings.secret("pseudonym_secret")
        attributes.append(SearchAttributePair(SUBJECT_REF, pseudonym(secret, sender_id)))
    try:
        handle: WorkflowHandle[RouteMessage, object] = await client.start_workflow(
            RouteMessage.run,
            RouteMessageInput(message_id=message_id),
            id=route_workflow_id(message_id),
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(attributes),
            static_summary=f"route message {message_id}",
            rpc_timeout=timedelta(seconds=5),
        )
    except WorkflowAlreadyStartedError:
        return False
    log.debug("started %s", handle.id)
    return True

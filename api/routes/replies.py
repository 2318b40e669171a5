"""Agent replies in a room: their status, and cancelling one that is still running.

Cancelling asks Temporal to cancel `reply-{message_id}-{agent}`; the workflow stops the
stream, releases the reserved credits and sends agent.error with code "cancelled". A reply
already stored cannot be cancelled (409). A team answer (`team-{message_id}`, its parts
`team-{message_id}-{agent}`) is cancelled as a whole, whichever of its replies is named.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Path
from temporalio.service import RPCError, RPCStatusCode

from api.deps import CurrentUser, SessionDep, StateDep
from iaf import workflow_calls
from iaf.db.models import AgentRun
from iaf.db.repositories.agents import AgentRunRepository
from iaf.errors import ApiError
from iaf.rooms.service import room_for_member
from schemas.agents import TERMINAL_STATUSES, CancelOut, ReplyOut

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/chat", tags=["replies"])

# reply-{message_id}-{agent id}, team-{message_id}[-{agent id}]: anything else names no reply
# (422, not a database lookup).
ReplyId = Annotated[
    str,
    Path(
        pattern=r"^(reply-[0-9]{1,19}-[a-z0-9][a-z0-9_-]{0,39}"
        r"|team-[0-9]{1,19}(-[a-z0-9][a-z0-9_-]{0,39})?)$"
    ),
]


async def _run_in_room(
    session: SessionDep, room_id: uuid.UUID, reply_id: ReplyId, user: CurrentUser
) -> tuple[AgentRun, str]:
    """The run and the caller's room role; 404 unless both the room and the run are theirs."""
    _, role = await room_for_member(session, room_id, user)
    run = await AgentRunRepository(session).in_room(reply_id, room_id)
    if run is None:
        raise ApiError(404, "reply_not_found", "reply not found")
    return run, role


@router.get("/rooms/{room_id}/replies/{reply_id}")
async def get_reply(
    room_id: uuid.UUID, reply_id: ReplyId, user: CurrentUser, session: SessionDep
) -> ReplyOut:
    run, _ = await _run_in_room(session, room_id, reply_id, user)
    return ReplyOut.model_validate(run, from_attributes=True)


@router.post("/rooms/{room_id}/replies/{reply_id}/cancel", status_code=202)
async def cancel_reply(
    room_id: uuid.UUID, reply_id: ReplyId, user: CurrentUser, session: SessionDep, state: StateDep
) -> CancelOut:
    run, role = await _run_in_room(session, room_id, reply_id, user)
    if run.is_team_part:  # a team answer stops as a whole: judge by its synthesis
        run = await AgentRunRepository(session).in_room(str(run.team_id), room_id) or run
    if run.requested_by != user.id and role not in ("owner", "admin"):
        raise ApiError(
            403, "forbidden", "only who asked for the reply or a room owner or admin may cancel it"
        )
    if run.status in TERMINAL_STATUSES:
        raise ApiError(409, "reply_finished", f"the reply is already {run.status}")
    workflow_id = run.team_id or run.reply_id
    await session.close()
    try:
        await workflow_calls.cancel_reply(state.temporal, workflow_id)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(409, "reply_finished", "the reply has already finished") from None
        log.warning("cancel of %s failed: %s", run.reply_id, exc.status)
        raise ApiError(503, "temporal_unavailable", "try again in a moment") from None
    return CancelOut(reply_id=run.reply_id, status="cancelling")

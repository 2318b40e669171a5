"""Posting, listing, editing and deleting messages; posting hands mentions to Temporal."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.deps import ClaimantDep, CurrentUser, SessionDep, StateDep, unauthorized
from api.ratelimit import DAY_SECONDS, enforce
from iaf.db.repositories.messages import MessageRepository
from iaf.db.repositories.referrals import ReferralRepository
from iaf.errors import ApiError
from iaf.files import service as files
from iaf.gdpr.service import remove_archives
from iaf.messages import service as messages
from iaf.privacy.guests import ORG_ONLY_NOTICE
from iaf.rooms.service import room_for_member, with_receipts
from iaf.settings import Settings
from iaf.workflow_calls import (
    best_effort,
    cancel_reply,
    signal_first_action,
    start_mentioned_replies,
    start_route_message,
    within_start_timeout,
)
from schemas.chat import MessageCreate, MessageEdit, MessageOut
from schemas.common import MAX_BIGINT, Page, storable_text

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/chat", tags=["messages"])

# Message ids are bigints: a larger one is a client's mistake (422), not a database error.
MessageId = Annotated[int, Path(ge=1, le=MAX_BIGINT)]


def checked_content(content: str, settings: Settings, *, with_files: bool = False) -> str:
    if not content.strip() and not with_files:
        raise ApiError(422, "empty_content", "content must not be empty")
    try:  # the schema checks this already; a caller passing other text gets a 422 too
        storable_text(content)
    except ValueError as exc:
        raise ApiError(422, "invalid_text", str(exc)) from None
    size = len(content.encode())
    if size > settings.message_max_bytes:
        raise ApiError(
            413,
            "content_too_large",
            f"content is {size} bytes; the limit is {settings.message_max_bytes}",
        )
    return content


@router.post("/rooms/{room_id}/messages", status_code=201)
async def post_message(
    room_id: uuid.UUID,
    body: MessageCreate,
    claimant: ClaimantDep,
    state: StateDep,
    response: Response,
) -> MessageOut:
    """One statement confirms the account and the membership, checks the limit and stores the
    message with its event. Once a user is known to have no referral waiting for a first
    action, it commits on its own (no BEGIN/COMMIT round trips); before, the referral's
    first action commits in the same transaction as the message."""
    settings = state.settings
    checked_content(body.content, settings, with_files=bool(body.attachment_ids))
    user_id = claimant.user_id
    # Files are claimed in the message's transaction, so that path never autocommits.
    autocommit = user_id in state.past_first_action and not body.attachment_ids
    maker = state.read_sessionmaker if autocommit else state.sessionmaker
    async with maker() as session:
        claimed = (
            await files.claim_for_post(session, settings, user_id, room_id, body)
            if body.attachment_ids
            else []
        )
        outcome = await MessageRepository(session).post(
            room_id,
            user_id,
            body,
            settings.posts_per_minute,
            token_version=claimant.token_version,
            token_id=claimant.token_id,
            attachments=[files.reference(a) for a in claimed],
        )
        if not outcome.authenticated:
            raise unauthorized()
        if not outcome.member:
            raise ApiError(404, "room_not_found", "room not found")
        enforce(outcome.usage, settings.posts_per_minute, 60, response)
        if outcome.archived:
            raise ApiError(409, "room_archived", "the room is archived and read-only")
        if not outcome.reply_ok:
            raise ApiError(422, "invalid_reply_to", "reply_to_id is not a message of this room")
        out, created, route = outcome.message, outcome.created, outcome.needs_route
        assert out is not None
        if created and claimed:
            await files.attach(session, claimed, out.id)
        referral_id = None
        if created and not autocommit:
            # Referral hook: first_action_at commits with the message.
            referral_id = await ReferralRepository(session).note_first_action(user_id)
        await session.commit()
    if created and referral_id is None:
        # Referrals are created with the account, so once none is waiting it never will be.
        state.past_first_action.add(user_id)
    starts: list[Awaitable[object]] = []
    if referral_id is not None:
        starts.append(signal_first_action(state.temporal, settings, referral_id, user_id))
    # Only mentions and auto-routing rooms need RouteMessage; plain chat skips Temporal.
    if created and route:
        starts += routing_starts(state, out.id, str(room_id), user_id, body.content)
    await within_start_timeout(settings, f"message {out.id}", *starts)
    response.status_code = 201 if created else 200
    return out


def routing_starts(
    state: StateDep, message_id: int, room_id: str, sender_id: uuid.UUID, content: str
) -> list[Awaitable[object]]:
    """The message is stored already; if Temporal is away, the sweep starts it later (rule 5).

    Mentioned agents start here too, concurrently with RouteMessage (no routing hop
    before the first token); RouteMessage starts the same reply ids, refused as duplicates.
    """
    starts: list[Awaitable[object]] = [
        start_route_message(state.temporal, state.settings, message_id, room_id, sender_id)
    ]
    if state.settings.api_starts_replies:
        starts.append(
            start_mentioned_replies(
                state.temporal, state.settings, message_id, room_id, sender_id, content
            )
        )
    return starts


@router.get("/rooms/{room_id}/messages")
async def list_messages(
    room_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    before: int | None = Query(default=None, ge=1, le=MAX_BIGINT),
    after: int | None = Query(default=None, ge=0, le=MAX_BIGINT),
    limit: int = Query(default=50, ge=1, le=200),
) -> Page[MessageOut]:
    if before is not None and after is not None and after >= before:
        raise ApiError(422, "invalid_request", "after must be smaller than before")
    room, _ = await room_for_member(session, room_id, user)
    items = await MessageRepository(session).page(room_id, before, after, limit)
    items = await with_receipts(session, room, items)
    if user.org_id != room.org_id:  # a guest: replies from organisation documents are not theirs
        items = [
            m.model_copy(update={"content": ORG_ONLY_NOTICE}) if m.org_knowledge else m
            for m in items
        ]
    full = len(items) == limit
    return Page[MessageOut](
        items=items,
        next_before=items[0].id if items and full and after is None else None,
        next_after=items[-1].id if items and full and after is not None else None,
    )


@router.put("/messages/{message_id}")
async def edit_message(
    message_id: MessageId,
    body: MessageEdit,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
) -> MessageOut:
    content = checked_content(body.content, state.settings)
    message = await messages.editable_message(
        session, message_id, user, state.settings.message_edit_window_minutes
    )
    limit = state.settings.message_edits_per_day
    await state.limiter.hit(f"edit:{user.id}", limit, DAY_SECONDS, None, session)
    change = await messages.edit_message(session, message, user, content)
    await session.commit()
    await _cancel_withdrawn(state, change)
    assert change.message is not None
    return change.message


@router.delete("/messages/{message_id}", status_code=204)
async def delete_message(
    message_id: MessageId, user: CurrentUser, session: SessionDep, state: StateDep
) -> Response:
    change = await messages.delete_message(session, message_id, user)
    await session.commit()
    await _cancel_withdrawn(state, change)
    if change.withdrawn_files:
        await files.remove_withdrawn(session, state.files, change.withdrawn_files)
    return Response(status_code=204)


async def _cancel_withdrawn(state: StateDep, change: messages.Change) -> None:
    """Replies still running for the old text stop; should Temporal be away, their persist
    step refuses to store an answer to a message that changed meanwhile. Archives holding
    the old text lose their files."""
    remove_archives(state.settings, change.stale_archives)
    for reply_id in change.running_replies:
        await best_effort(f"cancel of {reply_id}", _cancelled(state, reply_id))


async def _cancelled(state: StateDep, reply_id: str) -> bool:
    await cancel_reply(state.temporal, reply_id)
    return True

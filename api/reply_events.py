"""Following one agent reply through its room's event log, from inside the API.

The OpenAI-compatible endpoint streams a reply the way a room's SSE client sees it: live
through the process's RoomEventBroker, with the stored `room_events` as the source of truth
whenever the live feed may have missed something (a lagging queue, a lost LISTEN
connection, a quiet interval). It never asks the worker or Temporal for content.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from api.broker import Subscription
from api.deps import AppState
from iaf.db.repositories.room_events import EventRepository

TERMINAL = frozenset({"agent.done", "agent.error"})


class ReplyTimeout(Exception):
    """No terminal event within the allowed time."""


@dataclass(frozen=True)
class ReplyEvent:
    type: str  # agent.start | agent.delta | agent.reset | agent.done | agent.error | keepalive
    data: dict[str, Any]


KEEPALIVE = ReplyEvent("keepalive", {})


async def follow_reply(
    state: AppState,
    subscription: Subscription,
    room_id: uuid.UUID,
    reply_id: str,
    since: int,
    limit_seconds: float,
    quiet_interval: float,
) -> AsyncIterator[ReplyEvent]:
    """This reply's events in log order, each once, ending with agent.done or agent.error.

    `subscription` must exist before the reply starts, so nothing is published unseen; after
    each quiet interval (also a keep-alive for the caller) the log is read from `since` on.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_seconds
    last = since
    while True:
        rows: list[tuple[int, str, dict[str, Any]]] = []
        if subscription.lagged.is_set():
            subscription.lagged.clear()
            rows = await _stored_after(state, room_id, last)
        else:
            while not subscription.queue.empty():
                live = subscription.queue.get_nowait()
                if live.id is not None:
                    rows.append((live.id, live.type, live.data))
        for event_id, type_, data in rows:
            if event_id <= last:
                continue
            last = event_id
            if data.get("reply_id") == reply_id and type_.startswith("agent."):
                yield ReplyEvent(type_, data)
                if type_ in TERMINAL:
                    return
        if rows:
            continue
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise ReplyTimeout(reply_id)
        subscription.wakeup.clear()
        idle = subscription.queue.empty() and not subscription.lagged.is_set()
        if idle and not await _wait(subscription, min(quiet_interval, remaining)):
            subscription.lagged.set()  # a quiet spell: check the log before waiting again
            yield KEEPALIVE


async def _wait(subscription: Subscription, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(subscription.wakeup.wait(), seconds)
        return True
    return False


async def _stored_after(
    state: AppState, room_id: uuid.UUID, after_id: int
) -> list[tuple[int, str, dict[str, Any]]]:
    async with state.sessionmaker() as session:
        return await EventRepository(session).after(room_id, after_id, 500)


class AppendOnlyText:
    """Turns a reply's attempts into text a client can only append to.

    A retried LLM call restarts the answer (agent.reset). While the new attempt repeats what
    the client already has, nothing is sent; once it goes further, only the new part is. If
    it says something different (a non-deterministic model), the client keeps what it
    received and the new attempt follows after a blank line: nothing already sent can be
    taken back, and nothing of the new attempt is lost. The stored reply is the last attempt.
    """

    def __init__(self) -> None:
        self.sent = ""
        self.base = ""
        self.current = ""
        self.attempt = 1
        self.next_seq = 0

    def reset(self, attempt: int) -> None:
        if attempt > self.attempt:
            self.attempt, self.current, self.next_seq = attempt, "", 0

    def delta(self, text: str, attempt: int = 1, seq: int | None = None) -> str:
        """The text to send for one agent.delta ("" when nothing new)."""
        if attempt > self.attempt:
            self.reset(attempt)
        if attempt < self.attempt or (seq is not None and seq < self.next_seq):
            return ""  # a late delta of an abandoned attempt, or one already counted
        if seq is not None:
            self.next_seq = seq + 1
        self.current += text
        return self._advance(self.current)

    def finish(self, stored: str) -> str:
        """Whatever of the stored reply (the last attempt, stripped) the client lacks."""
        if not stored or stored.strip() == self.current.strip():
            return ""
        return self._advance(stored)

    def _advance(self, attempt_text: str) -> str:
        candidate = self.base + attempt_text
        if candidate.startswith(self.sent):
            new, self.sent = candidate[len(self.sent) :], candidate
            return new
        if self.sent.startswith(candidate):
            return ""
        self.base = self.sent + "\n\n"
        new = "\n\n" + attempt_text
        self.sent = self.base + attempt_text
        return new

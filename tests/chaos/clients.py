"""Clients as a browser's EventSource behaves: a room stream that reconnects with
Last-Event-ID after any end (a `stream.end` notice, a dropped connection, a refused
reconnect), trying each API address in turn, and that records every event it was given."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Received:
    id: int | None
    event: str
    data: dict[str, Any]


@dataclass
class ResumingStream:
    urls: list[str]
    token: str
    room_id: str
    events: list[Received] = field(default_factory=list)
    ends: list[str] = field(default_factory=list)  # why the server ended a stream
    connects: int = 0
    refused: int = 0
    last_id: int | None = None
    _task: asyncio.Task[None] | None = None
    _connected: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def connected(self, within: float = 60.0) -> None:
        await asyncio.wait_for(self._connected.wait(), within)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    def stored(self) -> list[Received]:
        return [e for e in self.events if e.id is not None]

    async def _run(self) -> None:
        turn = 0
        async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, read=None)) as http:
            while True:
                url = self.urls[turn % len(self.urls)]
                retry = await self._one_connection(http, url)
                if retry is None:  # could not connect there: the next address
                    turn += 1
                    retry = 0.2
                await asyncio.sleep(retry)

    async def _one_connection(self, http: httpx.AsyncClient, url: str) -> float | None:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = str(self.last_id)
        request = http.build_request(
            "GET", f"{url}/api/chat/rooms/{self.room_id}/events", headers=headers
        )
        try:
            response = await http.send(request, stream=True)
        except httpx.HTTPError:
            return None
        try:
            if response.status_code != 200:
                self.refused += 1
                return float(response.headers.get("Retry-After", "1"))
            self.connects += 1
            self._connected.set()
            return await self._read(response)
        except httpx.HTTPError:
            return None  # the process went away mid-stream
        finally:
            self._connected.clear()
            await response.aclose()

    async def _read(self, response: httpx.Response) -> float:
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line == "":
                retry = self._dispatch(fields)
                if retry is not None:
                    return retry
                fields = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                fields[key] = value[1:] if value.startswith(" ") else value
        return 0.2

    def _dispatch(self, fields: dict[str, str]) -> float | None:
        if "event" not in fields or "data" not in fields:
            return None
        event_id = int(fields["id"]) if fields.get("id") else None
        data = json.loads(fields["data"])
        self.events.append(Received(event_id, fields["event"], data))
        if event_id is not None:
            self.last_id = event_id
        if fields["event"] == "stream.end":
            self.ends.append(str(data.get("reason")))
            return int(fields.get("retry", "1000")) / 1000
        return None

"""Test helpers: free ports, an in-process uvicorn, users and rooms, an SSE reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from api.main import create_app
from iaf.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[str]:
    """An ASGI app served by uvicorn in this event loop, on a free port; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=60)


def serve_api(settings: Settings) -> contextlib.AbstractAsyncContextManager[str]:
    return serve_app(create_app(settings))


@dataclass
class Person:
    client: httpx.AsyncClient
    token: str
    user: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.user["id"])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.client.get(url, headers=headers, **kw)

    async def post(self, url: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.client.post(url, headers=headers, **kw)

    async def put(self, url: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.client.put(url, headers=headers, **kw)

    async def delete(self, url: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.client.delete(url, headers=headers, **kw)

    async def new_room(self, name: str = "room", **extra: Any) -> dict[str, Any]:
        response = await self.post("/api/chat/rooms", json={"name": name, **extra})
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def say(self, room_id: str, content: str, **extra: Any) -> dict[str, Any]:
        response = await self.post(
            f"/api/chat/rooms/{room_id}/messages", json={"content": content, **extra}
        )
        assert response.status_code in (200, 201), response.text
        return dict(response.json())


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


async def signup(client: httpx.AsyncClient, name: str = "Alice Example") -> Person:
    response = await client.post(
        "/api/auth/signup",
        json={"email": unique_email(), "password": "correct horse battery", "name": name},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Person(client, body["access_token"], body["user"])


async def colleague(admin: Person, name: str = "Bob Colleague") -> Person:
    email = unique_email("colleague")
    response = await admin.post(
        "/api/org/users", json={"email": email, "name": name, "password": "correct horse battery"}
    )
    assert response.status_code == 201, response.text
    login = await admin.client.post(
        "/api/auth/login", json={"email": email, "password": "correct horse battery"}
    )
    assert login.status_code == 200, login.text
    body = login.json()
    return Person(admin.client, body["access_token"], body["user"])


@dataclass
class SSEEvent:
    id: int | None
    event: str
    data: dict[str, Any]


@dataclass
class SSEStream:
    """Reads an SSE response in the background; tests wait for events with a timeout."""

    response: httpx.Response
    events: list[SSEEvent] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        fields: dict[str, str] = {}
        async for line in self.response.aiter_lines():
            if line == "":
                if "data" in fields and "event" in fields:
                    event_id = int(fields["id"]) if fields.get("id") else None
                    self.events.append(
                        SSEEvent(event_id, fields["event"], json.loads(fields["data"]))
                    )
                    self._arrived.set()
                fields = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                fields[key] = value[1:] if value.startswith(" ") else value

    async def wait_for(self, predicate: Any, timeout: float = 60.0) -> SSEEvent:
        deadline = asyncio.get_running_loop().time() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"no matching event; got {[e.event for e in self.events]}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await self.response.aclose()


@contextlib.asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, person: Person, room_id: str, last_event_id: int | None = None
) -> AsyncIterator[SSEStream]:
    headers = dict(person.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    request = client.build_request("GET", f"/api/chat/rooms/{room_id}/events", headers=headers)
    response = await client.send(request, stream=True)
    assert response.status_code == 200, (await response.aread()).decode()
    stream = SSEStream(response)
    stream.start()
    try:
        # The server announces our presence once it is subscribed: from then on nothing is missed.
        await stream.wait_for(
            lambda e: (
                e.event == "presence"
                and e.data.get("user_id") == person.id
                and e.data.get("status") == "online"
            )
        )
        yield stream
    finally:
        await stream.close()

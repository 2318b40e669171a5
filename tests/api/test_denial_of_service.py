"""What one caller can make the API spend is bounded: a test per bound.

Login lock-out counts per account and client address (a stranger cannot lock someone out),
argon2 runs off the event loop and is rate-limited where a signed-in person triggers it,
daily limits on what a stolen token could repeat, /healthz answers from one check per
interval, and the size bounds on bodies, pages and documents.
"""

from __future__ import annotations

import asyncio
import random
import time

import httpx

from iaf.security import ARGON2_THREADS, password_matches
from iaf.settings import Settings
from tests.conftest import make_settings
from tests.helpers import colleague, serve_api, signup

PASSWORD = "correct horse battery"


def from_address(url: str) -> httpx.AsyncClient:
    """A client from its own loopback address: per-address counts are its own."""
    address = f"127.{random.randint(1, 250)}.{random.randint(1, 250)}.{random.randint(2, 250)}"
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=url, transport=transport, timeout=30)


async def test_a_stranger_guessing_cannot_lock_the_owner_out(client, api_url, settings) -> None:
    alice = await signup(client)
    email = alice.user["email"]
    async with from_address(api_url) as stranger:
        codes = [
            (
                await stranger.post("/api/auth/login", json={"email": email, "password": "wrong!"})
            ).status_code
            for _ in range(settings.login_attempts_per_minute + 1)
        ]
    assert codes[-1] == 429, "the stranger's own attempts are limited"
    async with from_address(api_url) as owner:
        login = await owner.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, "the owner, from their address, still signs in"


async def test_argon2_runs_off_the_event_loop_and_is_bounded() -> None:
    """Verifying while the loop keeps ticking: the loop is never blocked for a hash."""
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await asyncio.gather(*(password_matches(None, "guess") for _ in range(4 * ARGON2_THREADS)))
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    assert ticks >= 10, f"the event loop ticked {ticks} times in {elapsed:.2f} s of hashing"


async def test_delete_account_password_checks_are_rate_limited(client, settings) -> None:
    alice = await signup(client)
    codes = [
        (await alice.post("/api/user/delete-account", json={"password": "not it"})).status_code
        for _ in range(settings.login_attempts_per_minute + 1)
    ]
    assert codes[:-1] == [403] * settings.login_attempts_per_minute
    assert codes[-1] == 429


async def test_daily_limits(settings: Settings, database_url: str, tmp_path, worker) -> None:
    tight = make_settings(
        tmp_path,
        database_url,
        settings.temporal_address,
        rooms_per_day=2,
        member_additions_per_day=1,
        message_edits_per_day=1,
        org_users_per_day=2,
        invitations_per_day=1,
    )
    async with serve_api(tight) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        admin = await signup(http)
        rooms = [await admin.post("/api/chat/rooms", json={"name": f"r{n}"}) for n in range(3)]
        assert [r.status_code for r in rooms] == [201, 201, 429]
        assert "Retry-After" in rooms[-1].headers
        room = rooms[0].json()["id"]
        bob = await colleague(admin)
        carol = await colleague(admin, "Carol Colleague")
        body = {"email": "x@example.com", "name": "X", "password": PASSWORD}
        assert (await admin.post("/api/org/users", json=body)).status_code == 429
        first = await admin.post(f"/api/chat/rooms/{room}/members", json={"user_id": bob.id})
        assert first.status_code == 201
        second = await admin.post(f"/api/chat/rooms/{room}/members", json={"user_id": carol.id})
        assert second.status_code == 429
        said = await admin.say(room, "typo")
        edits = [
            await admin.put(f"/api/chat/messages/{said['id']}", json={"content": f"fixed {n}"})
            for n in range(2)
        ]
        assert [e.status_code for e in edits] == [200, 429]
        invites = [
            await admin.post(f"/api/chat/rooms/{room}/invite", json={"email": f"i{n}@example.com"})
            for n in range(2)
        ]
        assert [i.status_code for i in invites] == [201, 429]


async def test_healthz_answers_many_callers_from_one_check(client) -> None:
    answers = await asyncio.gather(*(client.get("/healthz") for _ in range(30)))
    checked = {a.json()["checked_at"] for a in answers}
    assert len(checked) <= 2, f"{len(checked)} checks for 30 calls"


async def test_bounds_on_bodies_pages_and_documents(client, settings) -> None:
    alice = await signup(client)
    room = await alice.new_room("bounds")
    big = await alice.post(
        f"/api/chat/rooms/{room['id']}/messages",
        content=b"{" + b" " * (1024 * 1024 + 1) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    page = await alice.get(f"/api/chat/rooms/{room['id']}/messages", params={"limit": 201})
    assert page.status_code == 422
    message = "x" * (settings.message_max_bytes + 1)
    too_long = await alice.post(f"/api/chat/rooms/{room['id']}/messages", json={"content": message})
    assert too_long.status_code == 413
    document = await alice.post(
        "/api/knowledge/documents",
        json={"title": "big", "content": "a" * (settings.knowledge_max_bytes + 1), "scope": "org"},
    )
    assert document.status_code in (413, 422) and "error" in document.json()

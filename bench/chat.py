"""Benchmark: posting throughput/latency (1 and 2 API processes) and SSE fan-out latency.

Baselines, measured in the same run: the same rows (message + its message.new event) written with
raw psycopg inserts, and a raw INSERT → NOTIFY → LISTEN round trip.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import aiohttp
import asyncpg
from psycopg_pool import AsyncConnectionPool

from bench.stack import BenchStack, bench_stack
from bench.stats import summary_ms, write_results

CONCURRENCY = 32
POST_SECONDS = 8.0
SUBSCRIBERS = 200
SSE_MESSAGES = 60


async def _signup(http: aiohttp.ClientSession, base: str) -> tuple[str, str]:
    body = {
        "email": f"b-{uuid.uuid4().hex[:12]}@example.com",
        "password": "bench password",
        "name": "Bench",
    }
    async with http.post(f"{base}/api/auth/signup", json=body) as response:
        data = await response.json()
    return data["access_token"], data["user"]["id"]


async def _room(
    http: aiohttp.ClientSession, base: str, token: str, members: list[str] | None = None
) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.post(
        f"{base}/api/chat/rooms",
        json={"name": "bench", "member_ids": members or []},
        headers=headers,
    ) as response:
        return str((await response.json())["id"])


async def measure_posts(bases: list[str]) -> dict[str, Any]:
    """Closed loop: CONCURRENCY clients, each its own user and room, for POST_SECONDS."""
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
    async with aiohttp.ClientSession(connector=connector) as http:
        clients = []
        for i in range(CONCURRENCY):
            base = bases[i % len(bases)]
            token, _ = await _signup(http, base)
            clients.append((base, token, await _room(http, base, token)))
        latencies: list[float] = []
        errors = 0
        stop_at = time.perf_counter() + POST_SECONDS

        async def loop(base: str, token: str, room: str) -> None:
            nonlocal errors
            headers = {"Authorization": f"Bearer {token}"}
            n = 0
            while time.perf_counter() < stop_at:
                n += 1
                started = time.perf_counter()
                async with http.post(
                    f"{base}/api/chat/rooms/{room}/messages",
                    headers=headers,
                    json={"content": f"bench message {n}"},
                ) as response:
                    await response.read()
                    if response.status != 201:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(loop(*c) for c in clients))
        elapsed = time.perf_counter() - began
    return {
        "posts_per_s": round(len(latencies) / elapsed, 1),
        "errors": errors,
        **summary_ms(latencies),
    }


async def measure_raw_inserts(database_url: str) -> dict[str, Any]:
    """The same two rows per post, with raw psycopg and no HTTP, auth or ORM."""
    async with AsyncConnectionPool(
        database_url, min_size=CONCURRENCY, max_size=CONCURRENCY, open=False
    ) as pool:
        async with pool.connection() as conn:
            org = (
                await (
                    await conn.execute(
                        "INSERT INTO orgs (id, name) VALUES (gen_random_uuid(), 'raw') RETURNING id"
                    )
                ).fetchone()
            )[0]  # type: ignore[index]
            rooms = [
                (
                    await (
                        await conn.execute(
                            "INSERT INTO rooms (id, org_id, name, kind, topic, auto_route) VALUES (gen_random_uuid(), %s, 'r', 'group', '', false) RETURNING id",
                            (org,),
                        )
                    ).fetchone()
                )[0]  # type: ignore[index]
                for _ in range(CONCURRENCY)
            ]
        latencies: list[float] = []
        stop_at = time.perf_counter() + POST_SECONDS

        async def loop(room: Any) -> None:
            n = 0
            while time.perf_counter() < stop_at:
                n += 1
                started = time.perf_counter()
                async with pool.connection() as conn:
                    row = await (
                        await conn.execute(
                            "INSERT INTO messages (room_id, content, type, metadata, routed_at) VALUES (%s, %s, 'text', '{}', now()) RETURNING id, created_at",
                            (room, f"bench message {n}"),
                        )
                    ).fetchone()
                    assert row is not None
                    data = json.dumps(
                        {
                            "id": row[0],
                            "room_id": str(room),
                            "content": f"bench message {n}",
                            "created_at": row[1].isoformat(),
                        }
                    )
                    await conn.execute(
                        "INSERT INTO room_events (room_id, type, data) VALUES (%s, 'message.new', %s)",
                        (room, data),
                    )
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(loop(r) for r in rooms))
        elapsed = time.perf_counter() - began
    return {"posts_per_s": round(len(latencies) / elapsed, 1), **summary_ms(latencies)}


async def _read_sse(
    http: aiohttp.ClientSession,
    url: str,
    token: str,
    sent: dict[str, float],
    delays: list[float],
    ready: asyncio.Event,
    counter: list[int],
) -> None:
    async with http.get(
        url, headers={"Authorization": f"Bearer {token}"}, timeout=aiohttp.ClientTimeout(total=None)
    ) as response:
        counter[0] += 1
        if counter[0] == SUBSCRIBERS:
            ready.set()
        event = ""
        async for raw in response.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "message.new":
                content = json.loads(line[5:])["content"]
                if content in sent:
                    delays.append(time.perf_counter() - sent[content])


async def measure_sse(bases: list[str]) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=SUBSCRIBERS + 10)
    async with aiohttp.ClientSession(connector=connector) as http:
        token, _ = await _signup(http, bases[0])
        room = await _room(http, bases[0], token)
        sent: dict[str, float] = {}
        delays: list[float] = []
        ready, counter = asyncio.Event(), [0]
        readers = [
            asyncio.create_task(
                _read_sse(
                    http,
                    f"{bases[i % len(bases)]}/api/chat/rooms/{room}/events",
                    token,
                    sent,
                    delays,
                    ready,
                    counter,
                )
            )
            for i in range(SUBSCRIBERS)
        ]
        await asyncio.wait_for(ready.wait(), 60)
        await asyncio.sleep(1.0)
        headers = {"Authorization": f"Bearer {token}"}
        for n in range(SSE_MESSAGES):
            content = f"sse {n}"
            sent[content] = time.perf_counter()
            async with http.post(
                f"{bases[0]}/api/chat/rooms/{room}/messages",
                headers=headers,
                json={"content": content},
            ) as response:
                assert response.status == 201
            await asyncio.sleep(0.05)
        deadline = time.perf_counter() + 20
        while len(delays) < SUBSCRIBERS * SSE_MESSAGES and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    expected = SUBSCRIBERS * SSE_MESSAGES
    return {
        "subscribers": SUBSCRIBERS,
        "messages": SSE_MESSAGES,
        "delivered": len(delays),
        "expected": expected,
        **summary_ms(delays),
    }


async def measure_raw_notify(database_url: str) -> dict[str, Any]:
    """INSERT + commit on one connection → the NOTIFY arriving on a LISTEN connection (asyncpg)."""
    delays: list[float] = []
    arrived: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database_url)
    writer = await asyncpg.connect(database_url)
    try:
        org = await writer.fetchval(
            "INSERT INTO orgs (id, name) VALUES (gen_random_uuid(), 'n') RETURNING id"
        )
        room = await writer.fetchval(
            "INSERT INTO rooms (id, org_id, name, kind, topic, auto_route)"
            " VALUES (gen_random_uuid(), $1, 'r', 'group', '', false) RETURNING id",
            org,
        )
        await listener.add_listener("room_events", lambda *args: arrived.put_nowait(args[-1]))
        for n in range(SSE_MESSAGES):
            started = time.perf_counter()
            await writer.execute(
                "INSERT INTO room_events (room_id, type, data) VALUES ($1, 'message.new', $2::jsonb)",
                room,
                json.dumps({"n": n}),
            )
            await asyncio.wait_for(arrived.get(), 10)
            delays.append(time.perf_counter() - started)
    finally:
        await listener.close()
        await writer.close()
    return summary_ms(delays)


async def run(stack: BenchStack) -> dict[str, Any]:
    results: dict[str, Any] = {"concurrency": CONCURRENCY, "seconds_per_run": POST_SECONDS}
    results["baseline_raw_inserts"] = await measure_raw_inserts(stack.database_url)
    first = stack.api()
    results["posts_1_api"] = await measure_posts([first])
    second = stack.api()
    results["posts_2_api"] = await measure_posts([first, second])
    results["baseline_raw_notify"] = await measure_raw_notify(stack.database_url)
    results["sse_2_api"] = await measure_sse([first, second])
    base = results["baseline_raw_inserts"]["posts_per_s"]
    for key in ("posts_1_api", "posts_2_api"):
        results[key]["ratio_to_raw_inserts"] = round(results[key]["posts_per_s"] / base, 3)
    results["goals"] = {
        "posts_per_s_2_api>=500": results["posts_2_api"]["posts_per_s"] >= 500,
        "sse_p99_ms<=100_at_200": results["sse_2_api"]["p99_ms"] <= 100,
    }
    return results


def table(results: dict[str, Any]) -> str:
    rows = [
        ("raw psycopg inserts (baseline)", results["baseline_raw_inserts"]),
        ("POST /messages, 1 API process", results["posts_1_api"]),
        ("POST /messages, 2 API processes", results["posts_2_api"]),
    ]
    lines = ["| posting | posts/s | p50 ms | p99 ms | × baseline |", "|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['posts_per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r.get('ratio_to_raw_inserts', 1.0)} |"
        )
    sse, raw = results["sse_2_api"], results["baseline_raw_notify"]
    lines += [
        "",
        "| delivery | p50 ms | p99 ms | delivered |",
        "|---|---|---|---|",
        f"| raw INSERT→NOTIFY→LISTEN (baseline) | {raw['p50_ms']} | {raw['p99_ms']} | {raw['n']} |",
        f"| POST → SSE, {sse['subscribers']} subscribers on 2 API processes | {sse['p50_ms']} | {sse['p99_ms']} | {sse['delivered']}/{sse['expected']} |",
    ]
    return "\n".join(lines)


def main() -> dict[str, Any]:
    with bench_stack() as stack:
        results = asyncio.run(run(stack))
    path = write_results("chat", results)
    print(table(results))
    print(f"\nwritten to {path}")
    return results


if __name__ == "__main__":
    main()

"""Knowledge at an organisation's scale: the vector store, ingestion, and an agent's first token.

Each figure stands beside its baseline, measured in the same run:

1. Store (synthetic 384-dimension vectors, BM25 sparse vectors of generated text, the
   product's payloads and filters): Qdrant Edge holding 100,000 chunks of one organisation
   plus 100,000 of 50 others; org-filtered search p50/p99 (dense and hybrid), delete by filter
   of 10,000 points. Baseline: qdrant-client's local mode (the store before Edge) and Edge
   side by side on a 10,000-point subset local mode can hold.
2. Ingestion end to end on the `make run` configuration (API and worker processes, Temporal
   dev server with its SQLite file): documents posted to /api/knowledge/documents until
   ready, chunks per second, with `chunks_done/chunks_total` sampled meanwhile. Baseline: the
   embedding model alone on the same chunks in this process (bfloat16 as the worker runs it,
   and float32), the ceiling any ingestion path has on this CPU.
3. Mention -> first `agent.delta` with that knowledge base (100,000 chunks in the asker's
   organisation, 100,000 elsewhere) in the worker's store. Baseline, interleaved sample by
   sample: the same question in an organisation with no knowledge.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from bench.agents import AGENT, _client, _sample, _wait_for_pollers, _warm_up
from bench.stack import BenchStack, bench_stack
from bench.stats import summary_ms, write_results

DIM = 384
BIG_ORG_POINTS = 100_000
OTHER_POINTS = 100_000
OTHER_ORGS = 50
SUBSET = 10_000
DELETE_POINTS = 10_000
QUERIES = 60
UPSERT_BATCH = 512
INGEST_DOCUMENTS = 4
INGEST_DOCUMENT_BYTES = 60_000
LATENCY_SAMPLES = 30
GOALS = {"ingestion_chunks_per_s": 300.0, "first_delta_kb_over_empty": 1.2}

_WORDS = [f"w{i}" for i in range(4000)] + [
    "orders",
    "shard",
    "table",
    "partition",
    "invoice",
    "refund",
    "warehouse",
    "label",
    "printer",
    "carrier",
    "parcel",
    "tracking",
    "customer",
    "retention",
    "policy",
    "backup",
    "replica",
    "latency",
    "queue",
    "consumer",
    "schema",
]


def _text(rng: random.Random, words: int = 90) -> str:
    """Zipf-like words: a few frequent, many rare, as in real text."""
    picks = (min(int(rng.paretovariate(1.1)) - 1, len(_WORDS) - 1) for _ in range(words))
    return " ".join(_WORDS[i] for i in picks)


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)  # type: ignore[no-any-return]


# --- 1. the store ----------------------------------------------------------------------------


def _points(org: str, count: int, owners: int, seed: int) -> list[Any]:
    from iaf.retrieval.store import Indexed, chunk_point_id

    rng, words = np.random.default_rng(seed), random.Random(seed)
    vectors = _unit(rng, count).tolist()
    points = []
    for i in range(count):
        document = f"{org}-doc-{i // 400}"
        payload = {
            "org_id": org,
            "room_id": None,
            "document_id": document,
            "owner_id": f"{org}-owner-{i % owners}",
            "chunk": i % 400,
        }
        points.append(Indexed(chunk_point_id(document, i % 400), vectors[i], _text(words), payload))
    return points


async def _fill(store: Any, points: list[Any]) -> float:
    from iaf.retrieval.store import KNOWLEDGE

    await store.ensure(KNOWLEDGE, DIM)
    started = time.perf_counter()
    for first in range(0, len(points), UPSERT_BATCH):
        await store.upsert(KNOWLEDGE, points[first : first + UPSERT_BATCH])
    return time.perf_counter() - started


async def _searches(store: Any, org: str, mode: str) -> dict[str, float]:
    from iaf.retrieval.store import SearchQuery

    rng, words = np.random.default_rng(7), random.Random(7)
    samples = []
    for vector in _unit(rng, QUERIES).tolist():
        query = SearchQuery(" ".join(_text(words, 6).split()[:6]), vector, mode)  # type: ignore[arg-type]
        started = time.perf_counter()
        await store.search_knowledge(query, org, None, True, 5)
        samples.append(time.perf_counter() - started)
    return summary_ms(samples)


async def _delete_owner(store: Any, owner: str) -> tuple[float, int]:
    from iaf.retrieval.store import KNOWLEDGE

    before = await store.count_where(KNOWLEDGE, "owner_id", owner)
    started = time.perf_counter()
    await store.delete_where(KNOWLEDGE, "owner_id", owner)
    elapsed = time.perf_counter() - started
    assert await store.count_where(KNOWLEDGE, "owner_id", owner) == 0
    return elapsed, before


async def _engine_subset(store: Any) -> dict[str, Any]:
    """The 10,000-point subset: half in org "big", half in 10 others; delete 1,000."""
    points = _points("big", SUBSET // 2, 5, 1)
    for n in range(10):
        points += _points(f"other-{n}", SUBSET // 20, 5, 100 + n)
    upsert = await _fill(store, points)
    deleted_s, deleted = await _delete_owner(store, "big-owner-0")
    return {
        "points": len(points),
        "upsert_points_per_s": round(len(points) / upsert, 1),
        "search_dense_big_org": await _searches(store, "big", "dense"),
        "search_hybrid_big_org": await _searches(store, "big", "hybrid"),
        "delete_by_filter": {"points": deleted, "seconds": round(deleted_s, 3)},
    }


async def measure_store(work: Path) -> dict[str, Any]:
    from iaf.retrieval.edge import EdgeBackend
    from iaf.retrieval.qdrant import ClientBackend
    from iaf.retrieval.store import VectorStore

    results: dict[str, Any] = {}
    for name, backend in (
        ("local_mode_subset", ClientBackend.local(work / "local")),
        ("edge_subset", EdgeBackend(work / "edge-subset")),
    ):
        results[name] = await _engine_subset(VectorStore(backend))
        await backend.close()
        print(f"  {name}: {results[name]}", flush=True)
    edge = EdgeBackend(work / "edge-full")
    store = VectorStore(edge)
    # 100,000 in org "big" (10 owners: 10,000 each), 100,000 over 50 other orgs.
    upsert = await _fill(store, _points("big", BIG_ORG_POINTS, 10, 2))
    for n in range(OTHER_ORGS):
        upsert += await _fill(store, _points(f"other-{n}", OTHER_POINTS // OTHER_ORGS, 4, 200 + n))
    deleted_s, deleted = await _delete_owner(store, "big-owner-3")
    results["edge_full"] = {
        "points": BIG_ORG_POINTS + OTHER_POINTS,
        "upsert_points_per_s": round((BIG_ORG_POINTS + OTHER_POINTS) / upsert, 1),
        "search_dense_big_org": await _searches(store, "big", "dense"),
        "search_hybrid_big_org": await _searches(store, "big", "hybrid"),
        "search_hybrid_small_org": await _searches(store, "other-7", "hybrid"),
        "delete_by_filter": {"points": deleted, "seconds": round(deleted_s, 3)},
    }
    await edge.close()
    print(f"  edge_full: {results['edge_full']}", flush=True)
    return results


# --- 2. ingestion end to end -------------------------------------------------------------------


def _document(rng: random.Random) -> str:
    paragraphs = []
    while sum(len(p) for p in paragraphs) < INGEST_DOCUMENT_BYTES:
        sentences = [
            f"The {rng.choice(_WORDS[-20:])} service keeps {rng.choice(_WORDS[-20:])} records"
            f" for {rng.randint(2, 90)} days and reports {rng.choice(_WORDS[-20:])} metrics."
            for _ in range(rng.randint(3, 7))
        ]
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


async def _post_documents(
    http: aiohttp.ClientSession, base: str, token: str, texts: list[str]
) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    ids = []
    for n, text in enumerate(texts):
        body = {"title": f"Manual part {n}", "content": text, "scope": "org"}
        async with http.post(f"{base}/api/knowledge/documents", json=body, headers=headers) as r:
            assert r.status == 202, await r.text()
            ids.append(str((await r.json())["id"]))
    return ids


async def _until_ready(
    http: aiohttp.ClientSession, base: str, token: str, ids: list[str]
) -> list[tuple[float, int, int]]:
    """(seconds, chunks_done, chunks_total) over all documents, sampled until all are ready."""
    headers = {"Authorization": f"Bearer {token}"}
    started, samples = time.perf_counter(), []
    while True:
        documents = []
        for document_id in ids:
            url = f"{base}/api/knowledge/documents/{document_id}"
            async with http.get(url, headers=headers) as r:
                documents.append(await r.json())
        assert not any(d["status"] == "failed" for d in documents), documents
        done = sum(d["chunks_done"] for d in documents)
        total = sum(d["chunks_total"] or d["chunk_count"] for d in documents)
        samples.append((round(time.perf_counter() - started, 2), done, total))
        if all(d["status"] == "ready" for d in documents):
            return samples
        await asyncio.sleep(0.5)


async def measure_ingestion(base: str, token: str) -> dict[str, Any]:
    from iaf.retrieval.chunker import chunk_text
    from iaf.retrieval.embedder import LocalEmbedder, bundled_minilm_path
    from iaf.settings import Settings

    rng = random.Random(5)
    texts = [_document(rng) for _ in range(INGEST_DOCUMENTS)]
    settings = Settings(jwt_secret="b" * 40, pseudonym_secret="b" * 40)
    chunks = [
        c
        for t in texts
        for c in chunk_text(
            t, settings.knowledge_chunk_chars, settings.knowledge_chunk_overlap_chars
        )
    ]
    async with aiohttp.ClientSession() as http:
        started = time.perf_counter()
        ids = await _post_documents(http, base, token, texts)
        progress = await _until_ready(http, base, token, ids)
        elapsed = time.perf_counter() - started
    baseline = {}
    for label, bf16 in (("bf16", True), ("fp32", False)):
        embedder = LocalEmbedder(settings.embedding_model, bundled_minilm_path(), bf16=bf16)
        await embedder.embed(chunks[:32])
        began = time.perf_counter()
        await embedder.embed(chunks)
        baseline[label] = round(len(chunks) / (time.perf_counter() - began), 1)
        embedder.close()
    rate = len(chunks) / elapsed
    return {
        "documents": INGEST_DOCUMENTS,
        "chunks": len(chunks),
        "mean_chunk_chars": round(statistics.fmean(len(c) for c in chunks)),
        "end_to_end_seconds": round(elapsed, 2),
        "end_to_end_chunks_per_s": round(rate, 1),
        "embedding_alone_chunks_per_s": baseline,
        "end_to_end_over_embedding_alone": round(rate / baseline["bf16"], 2),
        "progress_samples": progress[:: max(1, len(progress) // 12)] + progress[-1:],
    }


# --- 3. first delta with a large knowledge base ----------------------------------------------


async def _signup_room(http: aiohttp.ClientSession, base: str) -> tuple[str, str, str]:
    body = {"email": f"k-{uuid.uuid4().hex[:10]}@example.com", "password": "bench pw 12345"}
    async with http.post(f"{base}/api/auth/signup", json={**body, "name": "Bench"}) as r:
        data = await r.json()
    return str(data["access_token"]), str(data["user"]["id"]), str(data["user"]["org_id"])


async def _knowledge_base(stack: BenchStack, org_id: str, owner_id: str) -> dict[str, Any]:
    """100,000 chunks of `org_id` (250 ready documents, real MiniLM vectors with noise) and
    100,000 of other orgs, written into the worker's store while no worker runs."""
    import psycopg

    from iaf.retrieval.edge import EdgeBackend
    from iaf.retrieval.embedder import make_embedder
    from iaf.retrieval.store import KNOWLEDGE, Indexed, VectorStore, chunk_point_id

    started = time.perf_counter()
    rng, words = np.random.default_rng(11), random.Random(11)
    topics = [
        f"How we {verb} the {thing}: notes from the {team} team, step {n}."
        for n, (verb, thing, team) in enumerate(
            (v, t, m)
            for v in ("shard", "partition", "back up", "monitor", "migrate")
            for t in ("orders table", "invoice store", "tracking events", "label queue")
            for m in ("platform", "data", "warehouse", "payments", "support")
        )
    ]
    embedder = make_embedder("local/all-MiniLM-L6-v2")
    base_vectors = np.asarray(await embedder.embed(topics), dtype=np.float32)
    embedder.close()
    documents = [str(uuid.uuid4()) for _ in range(BIG_ORG_POINTS // 400)]
    backend = EdgeBackend(Path(stack.env["DATA_DIR"]) / "qdrant")
    store = VectorStore(backend)
    await store.ensure(KNOWLEDGE, DIM)
    texts: list[tuple[str, int, str]] = []
    for first in range(0, BIG_ORG_POINTS, UPSERT_BATCH):
        batch = []
        for i in range(first, min(first + UPSERT_BATCH, BIG_ORG_POINTS)):
            topic = i % len(topics)
            noisy = base_vectors[topic] + rng.standard_normal(DIM).astype(np.float32) * 0.02
            noisy /= np.linalg.norm(noisy)
            document, chunk = documents[i // 400], i % 400
            text = f"{topics[topic]} {_text(words, 20)}"
            payload = {
                "org_id": org_id,
                "room_id": None,
                "document_id": document,
                "owner_id": owner_id,
                "chunk": chunk,
            }
            batch.append(Indexed(chunk_point_id(document, chunk), noisy.tolist(), text, payload))
            texts.append((document, chunk, text))
        await store.upsert(KNOWLEDGE, batch)
    for n in range(OTHER_ORGS):
        await _fill(store, _points(str(uuid.uuid4()), OTHER_POINTS // OTHER_ORGS, 4, 300 + n))
    await backend.close()
    with psycopg.connect(stack.database_url) as conn:
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO knowledge_documents (id, org_id, owner_id, scope, title, content,"
                " status, chunk_count, chunks_done, chunks_total) VALUES"
                " (%s, %s, %s, 'org', %s, '(bench)', 'ready', 400, 400, 400)",
                [(d, org_id, owner_id, f"Bench document {n}") for n, d in enumerate(documents)],
            )
            with cursor.copy(
                "COPY knowledge_chunks (document_id, chunk, content) FROM STDIN"
            ) as copy:
                for row in texts:
                    copy.write_row(row)
        conn.commit()
    return {
        "points": BIG_ORG_POINTS + OTHER_POINTS,
        "setup_seconds": round(time.perf_counter() - started, 1),
    }


async def run_stack_parts() -> dict[str, Any]:
    results: dict[str, Any] = {}
    with bench_stack(OFFLINE_LLM_TOKENS_PER_SECOND="0", STARTING_CREDITS="100000000") as stack:
        base = stack.api()
        worker = stack.spawn("worker")
        await _wait_for_pollers(stack, 1)
        async with aiohttp.ClientSession() as http:
            token, _, _ = await _signup_room(http, base)
        results["ingestion"] = await measure_ingestion(base, token)
        print(f"  ingestion: {results['ingestion']}", flush=True)
        worker.terminate()
        worker.wait(30)
        stack.processes.remove(worker)
        # The question's asker and their org, with the knowledge base.
        async with aiohttp.ClientSession() as http:
            asker = await _client(http, base)
            asker.task.cancel()
        results["knowledge_base"] = await _knowledge_base(
            stack, *await _org_of(stack, asker.user_id)
        )
        stack.spawn("worker")
        await _wait_for_pollers(stack, 1)
        await _warm_up(base)
        results["first_delta"] = await _first_delta_for(stack, base, asker)
    return results


async def _org_of(stack: BenchStack, user_id: str) -> tuple[str, str]:
    import psycopg

    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute("SELECT org_id FROM users WHERE id = %s", (user_id,)).fetchone()
    assert row is not None
    return str(row[0]), user_id


async def _first_delta_for(stack: BenchStack, base: str, asker: Any) -> dict[str, Any]:
    """The asker (whose org holds the knowledge base) and a newcomer (an org with none),
    interleaved: mention -> first agent.delta."""
    from bench.agents import Client, RoomWatch

    async with aiohttp.ClientSession() as http:
        watch = RoomWatch()
        url = f"{base}/api/chat/rooms/{asker.room_id}/events"
        task = asyncio.create_task(watch.read(http, url, asker.token))
        await asyncio.wait_for(watch.connected.wait(), 30)
        await asyncio.sleep(0.2)
        with_kb = Client(http, base, asker.token, asker.user_id, asker.room_id, watch, task)
        empty = await _client(http, base)
        samples: dict[str, list[float]] = {"knowledge_base": [], "empty": []}
        for n in range(3 + LATENCY_SAMPLES):
            question = f"How should we shard the orders table, take {n}?"
            for name, client in (("knowledge_base", with_kb), ("empty", empty)):
                first, _ = await _sample(client, f"@{AGENT} {question}", None)
                if n >= 3:
                    samples[name].append(first)
        for client in (with_kb, empty):
            client.task.cancel()
    summaries = {name: summary_ms(values) for name, values in samples.items()}
    summaries["steps"] = _context_steps(stack, asker.room_id)
    return summaries


def _context_steps(stack: BenchStack, room_id: str) -> dict[str, Any]:
    """What retrieval found for the asker's replies: steps taken and the best score."""
    import psycopg

    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute(
            "SELECT jsonb_array_length(context->'steps'), (context->'steps'->0->>'best_score')::float"
            " FROM agent_runs WHERE room_id = %s AND context IS NOT NULL",
            (room_id,),
        ).fetchall()
    return {
        "replies": len(rows),
        "mean_retrieval_steps": round(statistics.fmean(r[0] for r in rows), 2) if rows else None,
        "mean_best_score": round(statistics.fmean(r[1] or 0 for r in rows), 3) if rows else None,
    }


def table(results: dict[str, Any]) -> str:
    store = results["store"]
    lines = [
        "| store | points | upsert points/s | dense search p50 / p99 ms | hybrid p50 / p99 ms |"
        " delete by filter |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in (
        ("local_mode_subset", "qdrant-client local mode (baseline)"),
        ("edge_subset", "Qdrant Edge, same subset"),
        ("edge_full", "Qdrant Edge, 100k in the org + 100k elsewhere"),
    ):
        r = store[name]
        d, h = r["search_dense_big_org"], r["search_hybrid_big_org"]
        lines.append(
            f"| {label} | {r['points']} | {r['upsert_points_per_s']} | {d['p50_ms']} / {d['p99_ms']}"
            f" | {h['p50_ms']} / {h['p99_ms']} | {r['delete_by_filter']['points']} points in"
            f" {r['delete_by_filter']['seconds']} s |"
        )
    ingestion = results["ingestion"]
    first = results["first_delta"]
    lines += [
        "",
        f"ingestion: {ingestion['chunks']} chunks ({ingestion['mean_chunk_chars']} chars) in"
        f" {ingestion['end_to_end_seconds']} s = {ingestion['end_to_end_chunks_per_s']} chunks/s"
        f" end to end; embedding alone {ingestion['embedding_alone_chunks_per_s']} chunks/s",
        f"progress (s, chunks_done, chunks_total): {ingestion['progress_samples']}",
        "",
        "| mention -> first agent.delta | p50 ms | p99 ms | n |",
        "|---|---|---|---|",
        f"| org with no knowledge (baseline) | {first['empty']['p50_ms']} |"
        f" {first['empty']['p99_ms']} | {first['empty']['n']} |",
        f"| org with 100k chunks (+100k elsewhere) | {first['knowledge_base']['p50_ms']} |"
        f" {first['knowledge_base']['p99_ms']} | {first['knowledge_base']['n']} |",
        f"retrieval in those replies: {first['steps']}",
        "",
        f"ratios: {results['ratios']}",
        f"goals: {results['goals']}",
    ]
    return "\n".join(lines)


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="iaf-store-bench-") as work:
        store = asyncio.run(measure_store(Path(work)))
    results: dict[str, Any] = {"store": store, **asyncio.run(run_stack_parts())}
    local, edge, full = store["local_mode_subset"], store["edge_subset"], store["edge_full"]
    first = results["first_delta"]
    ratio = first["knowledge_base"]["p50_ms"] / first["empty"]["p50_ms"]
    results["ratios"] = {
        "subset_search_p50_local_over_edge": round(
            local["search_dense_big_org"]["p50_ms"] / edge["search_dense_big_org"]["p50_ms"], 1
        ),
        "subset_upsert_edge_over_local": round(
            edge["upsert_points_per_s"] / local["upsert_points_per_s"], 1
        ),
        "delete_seconds_per_1000_local_over_edge_full": round(
            (local["delete_by_filter"]["seconds"] / local["delete_by_filter"]["points"])
            / (full["delete_by_filter"]["seconds"] / full["delete_by_filter"]["points"]),
            1,
        ),
        "first_delta_p50_kb_over_empty": round(ratio, 2),
    }
    results["goals"] = {
        "first_delta_p50_kb<=1.2x_empty": ratio <= GOALS["first_delta_kb_over_empty"],
        "ingestion>=300_chunks_per_s": results["ingestion"]["end_to_end_chunks_per_s"]
        >= GOALS["ingestion_chunks_per_s"],
    }
    path = write_results("knowledge", results)
    print(table(results))
    print(f"\nwritten to {path}")
    return results


if __name__ == "__main__":
    sys.exit(main() and 0)

"""The store's filters keep organisations, rooms and users apart, on both back ends; hybrid
search finds an exact code the dense side alone ranks low."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from iaf.retrieval.edge import EdgeBackend
from iaf.retrieval.qdrant import ClientBackend
from iaf.retrieval.store import (
    KNOWLEDGE,
    MEMORIES,
    Indexed,
    SearchQuery,
    VectorStore,
    chunk_point_id,
)
from iaf.retrieval.vectors import CollectionMismatch

ORG_A, ORG_B, ROOM_1, ROOM_2 = "org-a", "org-b", "room-1", "room-2"


@pytest.fixture(params=["edge", "server"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    backend = EdgeBackend(tmp_path / "q") if request.param == "edge" else ClientBackend.local()
    yield VectorStore(backend)
    await backend.close()


def knowledge_point(
    org: str, room: str | None, document: str, chunk: int = 0, vector: list[float] | None = None
) -> Indexed:
    payload = {
        "org_id": org,
        "room_id": room,
        "document_id": document,
        "owner_id": "u",
        "chunk": chunk,
    }
    text = f"{document} chunk {chunk}"
    return Indexed(chunk_point_id(document, chunk), vector or [1.0, 0.0, 0.0], text, payload)


def query(vector: list[float], text: str = "chunk", mode: str = "hybrid") -> SearchQuery:
    return SearchQuery(text, vector, mode)  # type: ignore[arg-type]


async def test_knowledge_search_sees_org_documents_and_this_rooms_only(store) -> None:
    await store.ensure(KNOWLEDGE, 3)
    await store.upsert(
        KNOWLEDGE,
        [
            knowledge_point(ORG_A, None, "a-org"),
            knowledge_point(ORG_A, ROOM_1, "a-room-1"),
            knowledge_point(ORG_A, ROOM_2, "a-room-2"),
            knowledge_point(ORG_B, None, "b-org"),
            knowledge_point(ORG_B, ROOM_1, "b-room-1"),
        ],
    )

    async def found(org: str, room: str | None, include_org: bool) -> set[str]:
        for mode in ("hybrid", "dense", "sparse"):
            hits = await store.search_knowledge(
                query([1.0, 0.0, 0.0], mode=mode), org, room, include_org, 10
            )
            documents = {h.payload["document_id"] for h in hits}
            if mode == "hybrid":
                expected = documents
            assert documents == expected, mode
        return expected

    assert await found(ORG_A, ROOM_1, True) == {"a-org", "a-room-1"}
    assert await found(ORG_A, ROOM_1, False) == {"a-room-1"}
    assert await found(ORG_A, None, True) == {"a-org"}
    assert await found(ORG_A, None, False) == set()
    assert await found(ORG_B, ROOM_1, True) == {"b-org", "b-room-1"}


async def test_memories_are_searched_per_user_and_org(store) -> None:
    await store.ensure(MEMORIES, 3)
    points = [
        Indexed(
            str(uuid.uuid4()),
            [0.0, 1.0, 0.0],
            "likes tea",
            {"user_id": user, "org_id": org, "memory_id": f"{user}-{org}"},
        )
        for user, org in (("u1", ORG_A), ("u2", ORG_A), ("u1", ORG_B))
    ]
    await store.upsert(MEMORIES, points)
    hits = await store.search_memories(query([0.0, 1.0, 0.0], "tea"), "u1", ORG_A, 10)
    assert [h.payload["memory_id"] for h in hits] == [f"u1-{ORG_A}"]


async def test_hybrid_search_finds_an_exact_code_the_embedding_misses(store) -> None:
    await store.ensure(KNOWLEDGE, 3)
    near = [
        knowledge_point(ORG_A, None, f"near-{i}", vector=[1.0, 0.05 * i, 0.0]) for i in range(6)
    ]
    coded = Indexed(
        chunk_point_id("coded", 0),
        [0.0, 0.0, 1.0],  # far from the question's embedding
        "Refunds above the limit need approval code RF-2291 from finance",
        {"org_id": ORG_A, "room_id": None, "document_id": "coded", "owner_id": "u", "chunk": 0},
    )
    await store.upsert(KNOWLEDGE, [*near, coded])
    question = "which approval code do refunds need? RF-2291"

    async def documents(mode: str) -> list[str]:
        hits = await store.search_knowledge(
            query([1.0, 0.0, 0.0], question, mode), ORG_A, None, True, 5
        )
        return [h.payload["document_id"] for h in hits]

    assert "coded" not in await documents("dense")
    assert (await documents("sparse"))[0] == "coded"
    assert "coded" in await documents("hybrid")


async def test_reingesting_overwrites_and_stale_chunks_can_be_dropped(store) -> None:
    await store.ensure(KNOWLEDGE, 3)
    await store.upsert(KNOWLEDGE, [knowledge_point(ORG_A, None, "doc", i) for i in range(4)])
    await store.upsert(KNOWLEDGE, [knowledge_point(ORG_A, None, "doc", i) for i in range(2)])
    assert await store.count_where(KNOWLEDGE, "document_id", "doc") == 4
    await store.delete_where(KNOWLEDGE, "document_id", "doc", min_chunk=2)
    assert await store.count_where(KNOWLEDGE, "document_id", "doc") == 2
    await store.delete_where(KNOWLEDGE, "document_id", "doc")
    assert await store.count_where(KNOWLEDGE, "document_id", "doc") == 0


async def test_missing_collections_read_as_empty(store) -> None:
    assert await store.search_knowledge(query([1.0, 0.0, 0.0]), ORG_A, ROOM_1, True, 5) == []
    assert await store.count_where(MEMORIES, "user_id", "u1") == 0
    await store.delete_where(MEMORIES, "memory_id", "m")  # nothing to delete, no error


async def test_a_dimension_change_is_reported(store) -> None:
    await store.ensure(KNOWLEDGE, 3)
    await store.ensure(KNOWLEDGE, 3)  # idempotent
    with pytest.raises(CollectionMismatch, match="3-dimension"):
        await VectorStore(store.backend).ensure(KNOWLEDGE, 384)


def test_point_ids_are_stable_per_document_chunk() -> None:
    assert chunk_point_id("d", 0) == chunk_point_id("d", 0)
    assert len({chunk_point_id("d", 0), chunk_point_id("d", 1), chunk_point_id("e", 0)}) == 3
    uuid.UUID(chunk_point_id("d", 0))

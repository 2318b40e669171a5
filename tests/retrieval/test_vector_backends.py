"""One contract, two engines: Qdrant Edge (embedded) and qdrant-client (a Qdrant server; its
local mode stands in for the server here). Every test runs against both."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from iaf.retrieval.edge import EdgeBackend
from iaf.retrieval.qdrant import ClientBackend
from iaf.retrieval.sparse import SparseEncoder
from iaf.retrieval.vectors import (
    AtLeast,
    CollectionMismatch,
    CollectionSpec,
    IsNull,
    Match,
    VectorBackend,
    VectorPoint,
    VectorStoreBusy,
    Where,
    where,
)

SPEC = CollectionSpec("things", tenant_key="org", keyword_keys=("org", "room"), integer_keys=("n",))
ENCODER = SparseEncoder()


@pytest.fixture(params=["edge", "server"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorBackend]:
    opened: VectorBackend = (
        EdgeBackend(tmp_path / "qdrant") if request.param == "edge" else ClientBackend.local()
    )
    yield opened
    await opened.close()


def point(dense: list[float], text: str, **payload: object) -> VectorPoint:
    return VectorPoint(str(uuid.uuid4()), dense, ENCODER.document(text), dict(payload))


async def test_a_missing_collection_reads_as_empty(backend: VectorBackend) -> None:
    assert await backend.count("things") == 0
    assert await backend.query("things", where(org="a"), 5, dense=[1.0, 0.0, 0.0]) == []
    assert await backend.scroll("things", 10) == ([], None)
    await backend.delete("things", where(org="a"))  # nothing to delete, no error
    assert await backend.collections() == []


async def test_ensure_is_idempotent_and_refuses_another_dimension(backend: VectorBackend) -> None:
    await backend.ensure(SPEC, 3)
    await backend.ensure(SPEC, 3)
    assert await backend.collections() == ["things"]
    with pytest.raises(CollectionMismatch, match="3-dimension"):
        await backend.ensure(SPEC, 384)
    await backend.drop("things")
    assert await backend.collections() == []
    await backend.ensure(SPEC, 384)  # re-created with the new size


async def test_filters_select_by_payload(backend: VectorBackend) -> None:
    await backend.ensure(SPEC, 3)
    await backend.upsert(
        "things",
        [
            point([1.0, 0.0, 0.0], "one", org="a", room=None, n=0),
            point([1.0, 0.1, 0.0], "two", org="a", room="r1", n=1),
            point([1.0, 0.2, 0.0], "three", org="a", room="r2", n=2),
            point([1.0, 0.3, 0.0], "four", org="b", room=None, n=3),
        ],
    )
    org_or_room = Where(
        must=(Match("org", "a"), Where(should=(IsNull("room"), Match("room", "r1"))))
    )
    hits = await backend.query("things", org_or_room, 10, dense=[1.0, 0.0, 0.0])
    assert sorted(h.payload["n"] for h in hits) == [0, 1]
    assert await backend.count("things", where(org="a")) == 3
    assert await backend.count("things", Where(must=(AtLeast("n", 2),))) == 2
    assert await backend.count("things") == 4


async def test_dense_sparse_and_fused_queries(backend: VectorBackend) -> None:
    await backend.ensure(SPEC, 3)
    await backend.upsert(
        "things",
        [
            point([1.0, 0.0, 0.0], "the quarterly budget review", org="a", room=None, n=0),
            point([0.0, 1.0, 0.0], "error code QX-4471 on the billing export", org="a", n=1),
            point([0.6, 0.8, 0.0], "holiday schedule for the support team", org="a", n=2),
            point([0.0, 1.0, 0.0], "error code QX-4471 in another tenant", org="b", n=3),
        ],
    )
    near_first = await backend.query("things", where(org="a"), 3, dense=[1.0, 0.0, 0.0])
    assert [h.payload["n"] for h in near_first] == [0, 2, 1]
    assert near_first[0].similarity == pytest.approx(1.0, abs=1e-4)
    words = ENCODER.query("QX-4471")
    exact = await backend.query("things", where(org="a"), 3, sparse=words)
    assert [h.payload["n"] for h in exact] == [1], "only the point holding the code"
    assert exact[0].similarity is None
    fused = await backend.query(
        "things", where(org="a"), 3, dense=[1.0, 0.0, 0.0], sparse=words, candidates=3
    )
    # Ranked first by one side each: n=0 (dense) and n=1 (sparse, also 3rd dense) lead.
    assert {h.payload["n"] for h in fused[:2]} == {0, 1}
    assert {h.payload["n"] for h in fused} == {0, 1, 2}
    by_n = {h.payload["n"]: h for h in fused}
    assert by_n[1].similarity == pytest.approx(0.0, abs=1e-4)
    assert by_n[2].similarity == pytest.approx(0.6, abs=1e-3)


async def test_upsert_overwrites_and_delete_by_filter(backend: VectorBackend) -> None:
    await backend.ensure(SPEC, 3)
    first = point([1.0, 0.0, 0.0], "draft", org="a", n=0)
    await backend.upsert("things", [first, point([0.0, 1.0, 0.0], "other", org="a", n=5)])
    again = VectorPoint(first.id, [0.0, 0.0, 1.0], ENCODER.document("final"), {"org": "a", "n": 1})
    await backend.upsert("things", [again])
    assert await backend.count("things") == 2
    hits = await backend.query("things", where(org="a"), 1, dense=[0.0, 0.0, 1.0])
    assert (hits[0].point_id, hits[0].payload["n"]) == (first.id, 1)
    await backend.delete("things", Where(must=(Match("org", "a"), AtLeast("n", 2))))
    assert await backend.count("things") == 1
    await backend.delete("things", where(org="a"))
    assert await backend.count("things") == 0


async def test_scroll_pages_through_every_point(backend: VectorBackend) -> None:
    await backend.ensure(SPEC, 3)
    await backend.upsert(
        "things", [point([1.0, float(i), 0.0], f"p{i}", org="a", n=i) for i in range(25)]
    )
    seen: list[int] = []
    offset: str | None = None
    while True:
        page, offset = await backend.scroll("things", 10, offset)
        assert len(page) <= 10
        seen += [h.payload["n"] for h in page]
        if offset is None:
            break
    assert sorted(seen) == list(range(25))


async def test_the_embedded_store_admits_one_process_at_a_time(tmp_path: Path) -> None:
    first = EdgeBackend(tmp_path / "qdrant")
    await first.ensure(SPEC, 3)
    await first.upsert("things", [point([1.0, 0.0, 0.0], "kept", org="a", n=0)])
    with pytest.raises(VectorStoreBusy, match="another process"):
        EdgeBackend(tmp_path / "qdrant")
    await first.close()
    reopened = EdgeBackend(tmp_path / "qdrant")
    assert await reopened.count("things") == 1, "points survive closing and reopening"
    await reopened.compact()
    assert await reopened.count("things") == 1
    await reopened.close()

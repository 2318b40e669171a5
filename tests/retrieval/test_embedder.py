"""The bundled MiniLM model loads from site-packages offline and ranks by meaning."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from iaf.retrieval.embedder import (
    LiteLLMEmbedder,
    LocalEmbedder,
    bundled_minilm_path,
    make_embedder,
)


@pytest.fixture(scope="module")
async def embedder():
    model = make_embedder("local/all-MiniLM-L6-v2")
    assert isinstance(model, LocalEmbedder)
    yield model
    model.close()


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_vectors_are_normalised_and_384_wide(embedder) -> None:
    assert await embedder.dimension() == 384
    vectors = await embedder.embed(["hello world", "bonjour"])
    assert len(vectors) == 2
    for vector in vectors:
        assert len(vector) == 384
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-4)
    assert await embedder.embed([]) == []


async def test_similar_meaning_scores_higher(embedder) -> None:
    query, near, far = await embedder.embed(
        [
            "How should we structure the REST API?",
            "Design the HTTP API around resources and versioned endpoints.",
            "The cake recipe needs three eggs and some sugar.",
        ]
    )
    assert cosine(query, near) > cosine(query, far) + 0.2


def test_settings_choose_the_model() -> None:
    assert (bundled_minilm_path() / "model.safetensors").exists()
    assert isinstance(make_embedder("openai/text-embedding-3-small"), LiteLLMEmbedder)
    with pytest.raises(ValueError, match="no model directory"):
        make_embedder(f"local/{Path('/nonexistent/model')}")


async def test_a_litellm_embedding_model_embeds_through_litellm(tmp_path: Path) -> None:
    """EMBEDDING_MODEL=<provider>/<model> goes through litellm.aembedding: here the offline
    provider's hashed embeddings, stored in and searched from Qdrant like MiniLM's."""
    from iaf.llm.offline import EMBEDDING_DIMENSIONS, register_offline_provider
    from iaf.retrieval.edge import EdgeBackend
    from iaf.retrieval.store import KNOWLEDGE, Indexed, SearchQuery, VectorStore, chunk_point_id

    register_offline_provider()
    embedder = make_embedder("offline/hashed-words")
    assert isinstance(embedder, LiteLLMEmbedder)
    assert await embedder.dimension() == EMBEDDING_DIMENSIONS
    texts = ["partition the orders table by month", "three eggs and sugar for the cake"]
    vectors = await embedder.embed(texts)
    backend = EdgeBackend(tmp_path / "qdrant")
    store = VectorStore(backend)
    await store.ensure(KNOWLEDGE, await embedder.dimension())
    payload = {"org_id": "o", "room_id": None, "owner_id": "u", "document_id": "d"}
    await store.upsert(
        KNOWLEDGE,
        [
            Indexed(chunk_point_id("d", i), vector, text, {**payload, "chunk": i})
            for i, (text, vector) in enumerate(zip(texts, vectors, strict=True))
        ],
    )
    question = "how do we partition orders?"
    [query] = await embedder.embed([question])
    search = SearchQuery(question, query, "dense")
    hits = await store.search_knowledge(search, "o", None, include_org=True, limit=2)
    await backend.close()
    assert hits[0].payload["chunk"] == 0 and hits[0].score > hits[1].score

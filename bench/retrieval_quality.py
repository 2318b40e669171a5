"""Retrieval quality: recall@5 and MRR of dense, sparse and hybrid search on the project's
evaluation set (bench/data/retrieval_eval.json: 35 documents and 72 questions, English and
French, each question expecting one document).

The documents go through the product's own path: chunker, MiniLM embedder, BM25 sparse
encoder, VectorStore on Qdrant Edge, knowledge search filtered by organisation, top 5 chunks
(`retrieval_top_k`). A question is found at rank r when the r-th chunk returned is from the
expected document; recall@5 counts questions found in the top 5, MRR averages 1/r (0 when not
found). Dense is the baseline: hybrid has to beat it on recall@5.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.stats import write_results

DATA = Path(__file__).resolve().parent / "data" / "retrieval_eval.json"
MODES = ("dense", "sparse", "hybrid")
TOP_K = 5
ORG = "eval-org"
# A question that quotes a code, a version, a path or a name written like one.
_IDENTIFIER = re.compile(r"[A-Z]{2,}-\d|\d{3,}|/v\d|\b[a-z]+[.-][a-z]+[.-]|X-[A-Z]")


def load() -> dict[str, Any]:
    return dict(json.loads(DATA.read_text()))


async def evaluate(data: dict[str, Any]) -> dict[str, Any]:
    from iaf.retrieval.chunker import chunk_text
    from iaf.retrieval.edge import EdgeBackend
    from iaf.retrieval.embedder import make_embedder
    from iaf.retrieval.store import KNOWLEDGE, Indexed, SearchQuery, VectorStore, chunk_point_id
    from iaf.settings import Settings

    settings = Settings(jwt_secret="b" * 40, pseudonym_secret="b" * 40)
    embedder = make_embedder(settings.embedding_model)
    with tempfile.TemporaryDirectory(prefix="iaf-eval-") as tmp:
        backend = EdgeBackend(Path(tmp))
        store = VectorStore(backend)
        await store.ensure(KNOWLEDGE, await embedder.dimension())
        chunks = 0
        for document in data["documents"]:
            texts = chunk_text(
                document["text"],
                settings.knowledge_chunk_chars,
                settings.knowledge_chunk_overlap_chars,
            )
            vectors = await embedder.embed(texts)
            payload = {
                "org_id": ORG,
                "room_id": None,
                "owner_id": "o",
                "document_id": document["id"],
            }
            await store.upsert(
                KNOWLEDGE,
                [
                    Indexed(chunk_point_id(document["id"], i), v, t, {**payload, "chunk": i})
                    for i, (t, v) in enumerate(zip(texts, vectors, strict=True))
                ],
            )
            chunks += len(texts)
        questions = data["questions"]
        vectors = await embedder.embed([q["q"] for q in questions])
        ranks: dict[str, list[int | None]] = {mode: [] for mode in MODES}
        for question, vector in zip(questions, vectors, strict=True):
            for mode in MODES:
                search = SearchQuery(question["q"], vector, mode, settings.retrieval_candidates)
                hits = await store.search_knowledge(search, ORG, None, True, TOP_K)
                found = [h.payload["document_id"] for h in hits]
                rank = found.index(question["doc"]) + 1 if question["doc"] in found else None
                ranks[mode].append(rank)
        await backend.close()
    embedder.close()
    return {
        "documents": len(data["documents"]),
        "chunks": chunks,
        "questions": len(questions),
        "modes": {mode: _scores(ranks[mode], questions) for mode in MODES},
        "misses": {
            mode: [q["q"] for q, r in zip(questions, ranks[mode], strict=True) if r is None]
            for mode in MODES
        },
    }


def _scores(ranks: list[int | None], questions: list[dict[str, Any]]) -> dict[str, Any]:
    def summary(selected: list[int | None]) -> dict[str, float]:
        if not selected:
            return {"n": 0}
        return {
            "n": len(selected),
            "recall@5": round(sum(r is not None for r in selected) / len(selected), 3),
            "mrr": round(sum(1 / r for r in selected if r) / len(selected), 3),
        }

    groups = {
        "all": ranks,
        "en": [r for r, q in zip(ranks, questions, strict=True) if q["lang"] == "en"],
        "fr": [r for r, q in zip(ranks, questions, strict=True) if q["lang"] == "fr"],
        "quotes_identifier": [
            r for r, q in zip(ranks, questions, strict=True) if _IDENTIFIER.search(q["q"])
        ],
        "paraphrase": [
            r for r, q in zip(ranks, questions, strict=True) if not _IDENTIFIER.search(q["q"])
        ],
    }
    return {name: summary(selected) for name, selected in groups.items()}


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{results['questions']} questions over {results['documents']} documents"
        f" ({results['chunks']} chunks), top {TOP_K} chunks",
        "",
        "| mode | recall@5 | MRR | EN recall@5 | FR recall@5 | identifier recall@5 (n) |"
        " paraphrase recall@5 (n) |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        s = results["modes"][mode]
        lines.append(
            f"| {mode}{' (baseline)' if mode == 'dense' else ''} | {s['all']['recall@5']} |"
            f" {s['all']['mrr']} | {s['en']['recall@5']} | {s['fr']['recall@5']} |"
            f" {s['quotes_identifier']['recall@5']} ({s['quotes_identifier']['n']}) |"
            f" {s['paraphrase']['recall@5']} ({s['paraphrase']['n']}) |"
        )
    lines += ["", f"ratios: {results['ratios']}", f"goals: {results['goals']}"]
    return "\n".join(lines)


def main() -> dict[str, Any]:
    started = time.perf_counter()
    results = asyncio.run(evaluate(load()))
    modes = results["modes"]
    dense, hybrid = modes["dense"]["all"], modes["hybrid"]["all"]
    results["ratios"] = {
        "hybrid_over_dense_recall@5": round(hybrid["recall@5"] / dense["recall@5"], 3),
        "hybrid_over_dense_mrr": round(hybrid["mrr"] / dense["mrr"], 3),
    }
    results["goals"] = {"hybrid_recall@5>dense": hybrid["recall@5"] > dense["recall@5"]}
    results["seconds"] = round(time.perf_counter() - started, 1)
    path = write_results("retrieval_quality", results)
    print(table(results))
    print(f"\nwritten to {path}")
    return results


if __name__ == "__main__":
    main()

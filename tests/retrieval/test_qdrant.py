"""Local-mode Qdrant runs off the event loop: a long operation does not stall the worker."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from qdrant_client import models

from iaf.retrieval.qdrant import is_local, make_qdrant
from iaf.settings import Settings


async def test_a_long_local_mode_operation_leaves_the_event_loop_running(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, jwt_secret="j" * 40, pseudonym_secret="p" * 40)
    client = make_qdrant(settings)
    assert is_local(client)
    await client.create_collection(
        "points", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE)
    )
    points = [
        models.PointStruct(id=str(uuid.uuid4()), vector=[1.0, 0.0, 0.0, float(i)], payload={"k": 1})
        for i in range(3000)
    ]
    await client.upsert("points", points=points)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    # One SQLite commit per deleted point in local mode: seconds of work.
    selector = models.Filter(
        must=[models.FieldCondition(key="k", match=models.MatchValue(value=1))]
    )
    await client.delete("points", points_selector=models.FilterSelector(filter=selector))
    done.set()
    await task
    assert (await client.count("points", exact=True)).count == 0
    assert ticks >= 3, "the event loop kept running while Qdrant worked"
    await client.close()

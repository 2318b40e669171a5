"""Deleting a room removes its documents' vectors, even when Temporal was away at the time."""

from __future__ import annotations

import uuid

from iaf.retrieval.resume import resume_vector_jobs
from iaf.retrieval.vectors import where
from tests.agent_helpers import ingest, rows
from tests.helpers import signup
from tests.privacy_helpers import eventually


async def room_points(worker, room_id: str) -> int:
    if "knowledge" not in await worker.vectors.collections():
        return 0
    return await worker.vectors.count("knowledge", where(room_id=room_id))


async def test_deleting_a_room_deletes_its_knowledge_points(client, worker, database_url):
    alice = await signup(client, "Rita Roomdeleter")
    room = await alice.new_room("to delete")
    keep = await alice.new_room("to keep")
    secret = f"Ibis{uuid.uuid4().hex[:6]}"
    await ingest(alice, "Room notes", f"The {secret} vault opens on Tuesdays.", "room", room["id"])
    await ingest(alice, "Kept notes", "The other vault opens on Fridays.", "room", keep["id"])
    assert await room_points(worker, room["id"]) >= 1

    assert (await alice.delete(f"/api/chat/rooms/{room['id']}")).status_code == 204

    async def left() -> int:
        return await room_points(worker, room["id"])

    assert await eventually(left, lambda n: n == 0) == 0
    assert await room_points(worker, keep["id"]) >= 1
    assert (
        rows(
            database_url, "SELECT count(*) FROM room_vector_removals WHERE room_id = %s", room["id"]
        )[0][0]
        == 0
    )


async def test_a_removal_recorded_while_temporal_was_away_is_resumed(
    client, worker, settings, database_url, monkeypatch
):
    alice = await signup(client, "Remi Resumer")
    room = await alice.new_room("to delete later")
    await ingest(alice, "Notes", "The heron ledger closes at noon.", "room", room["id"])
    # The API could not start RemoveVectors: the room is gone, its note to remove stays.
    monkeypatch.setattr("api.routes.rooms.start_vector_job", _unreachable)
    assert (await alice.delete(f"/api/chat/rooms/{room['id']}")).status_code == 204
    assert await room_points(worker, room["id"]) >= 1
    monkeypatch.setattr(settings, "knowledge_resume_after_seconds", 0.0)
    assert await resume_vector_jobs(worker.sessionmaker, worker.temporal, settings) >= 1

    async def left() -> int:
        return await room_points(worker, room["id"])

    assert await eventually(left, lambda n: n == 0) == 0


async def _unreachable(*args: object, **kwargs: object) -> bool:
    raise ConnectionError("temporal is away")

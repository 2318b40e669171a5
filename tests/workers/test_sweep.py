"""Rule 5: a message posted while Temporal is down is stored, then routed once Temporal is back."""

from __future__ import annotations

import asyncio

import psycopg

from iaf.devstack.temporal import TemporalDevServer
from iaf.workers.main import running_worker
from tests.conftest import make_settings
from tests.helpers import free_port, serve_api, signup


def _routing_state(database_url: str, message_id: int) -> tuple[object, object]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT routed_at, metadata FROM messages WHERE id = %s", (message_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


async def test_posting_while_temporal_is_stopped_then_routed_after_it_returns(data_dir, postgres):
    import httpx

    from iaf.db.migrate import upgrade

    # Its own database, so no other test's worker can route the message for it.
    postgres.ensure_database("iaf_sweep")
    database_url = postgres.url("iaf_sweep")
    await asyncio.to_thread(upgrade, database_url)

    temporal = TemporalDevServer(free_port(), None, db_file=data_dir / "sweep-temporal.sqlite")
    settings = make_settings(
        data_dir, database_url, temporal.address, temporal_task_queue="iaf-sweep-test"
    )
    async with serve_api(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        alice = await signup(client)
        room = await alice.new_room()
        response = await alice.post(
            f"/api/chat/rooms/{room['id']}/messages", json={"content": "@architect are you there?"}
        )
        assert response.status_code == 201
        message_id = response.json()["id"]
        assert _routing_state(database_url, message_id)[0] is None
        health = (await client.get("/healthz")).json()
        assert health["checks"]["temporal"]["status"] == "down"

        temporal.start()
        try:
            # The session's worker owns the local Qdrant path; this one needs no retrieval.
            async with running_worker(settings, serve_retrieval=False):
                for _ in range(300):
                    routed_at, metadata = _routing_state(database_url, message_id)
                    if routed_at is not None:
                        break
                    await asyncio.sleep(0.1)
            assert routed_at is not None, "the sweep started RouteMessage after Temporal came back"
            assert metadata["mentions"][0]["kind"] == "agent"
            assert metadata["mentions"][0]["id"] == "architect"
        finally:
            temporal.stop()

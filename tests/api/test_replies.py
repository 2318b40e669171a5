"""The replies API refuses what cannot be a reply id with a 422, before any lookup."""

from __future__ import annotations

import pytest

from tests.helpers import signup


@pytest.mark.parametrize("reply_id", ["reply-1-architect%00", "x" * 300, "reply--a", "drop table"])
async def test_malformed_reply_ids_are_422(client, reply_id):
    alice = await signup(client)
    room = await alice.new_room()
    base = f"/api/chat/rooms/{room['id']}/replies/{reply_id}"
    for response in (await alice.get(base), await alice.post(f"{base}/cancel")):
        assert response.status_code == 422, response.text
        assert "error" in response.json()


async def test_an_unknown_well_formed_reply_id_is_404(client):
    alice = await signup(client)
    room = await alice.new_room()
    response = await alice.get(f"/api/chat/rooms/{room['id']}/replies/reply-999999-architect")
    assert response.status_code == 404 and response.json()["error"]["code"] == "reply_not_found"

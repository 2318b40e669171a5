"""The agent directory: autocomplete ranking, limits, one agent's card, who may read it."""

from __future__ import annotations

from iaf.agents.registry import get_registry
from tests.helpers import signup


async def test_autocomplete_ranks_id_prefix_before_name_and_description_matches(client):
    alice = await signup(client)
    response = await alice.get("/api/agents", params={"q": "dev"})
    assert response.status_code == 200, response.text
    ids = [item["id"] for item in response.json()["items"]]
    assert ids == ["developer", "devops"]
    first = response.json()["items"][0]
    assert set(first) == {"id", "name", "description", "role", "category", "aliases", "model"}
    assert first["category"] == "engineering"
    assert first["name"] == "Developer"
    assert first["model"] == "offline/iaf-offline"


async def test_autocomplete_accepts_the_at_sign_and_matches_descriptions(client):
    alice = await signup(client)
    exact = await alice.get("/api/agents", params={"q": "@ux"})
    assert exact.json()["items"][0]["id"] == "ux"
    by_description = await alice.get("/api/agents", params={"q": "gdpr"})
    assert [i["id"] for i in by_description.json()["items"]] == ["security"]
    nothing = await alice.get("/api/agents", params={"q": "zzz-no-such"})
    assert nothing.status_code == 200 and nothing.json()["items"] == []


async def test_empty_query_lists_agents_by_id_up_to_the_limit(client):
    alice = await signup(client)
    everyone = await alice.get("/api/agents")
    ids = [i["id"] for i in everyone.json()["items"]]
    assert ids == sorted(p.id for p in get_registry())[:10]
    three = await alice.get("/api/agents", params={"limit": 3})
    assert [i["id"] for i in three.json()["items"]] == ids[:3]


async def test_bad_limits_and_long_queries_are_422(client):
    alice = await signup(client)
    for params in ({"limit": 0}, {"limit": 51}, {"limit": "many"}, {"q": "x" * 101}):
        response = await alice.get("/api/agents", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]["code"] == "invalid_request"


async def test_one_agent_card_and_unknown_agent_404(client):
    alice = await signup(client)
    response = await alice.get("/api/agents/architect")
    assert response.status_code == 200
    assert response.json()["id"] == "architect"
    assert response.json()["role"] == "Software architect"
    missing = await alice.get("/api/agents/nobody")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "agent_not_found"


async def test_the_directory_requires_a_signed_in_user(client):
    for url in ("/api/agents", "/api/agents/architect"):
        anonymous = await client.get(url)
        assert anonymous.status_code == 401
        forged = await client.get(url, headers={"Authorization": "Bearer not-a-token"})
        assert forged.status_code == 401


async def test_the_directory_filters_by_category(client):
    alice = await signup(client)
    quality = await alice.get("/api/agents", params={"category": "quality", "limit": 50})
    assert quality.status_code == 200, quality.text
    assert [i["id"] for i in quality.json()["items"]] == ["qa", "security", "tester"]
    assert {i["category"] for i in quality.json()["items"]} == {"quality"}
    counts = {c["id"]: c["count"] for c in quality.json()["categories"]}
    assert sum(counts.values()) == 19 and counts["orchestration"] == 4
    searched = await alice.get("/api/agents", params={"category": "orchestration", "q": "build"})
    assert [i["id"] for i in searched.json()["items"]] == ["agent-builder", "workflow-builder"]
    unknown = await alice.get("/api/agents", params={"category": "marketing"})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "invalid_request"


async def test_an_alias_finds_the_agent_card(client):
    alice = await signup(client)
    response = await alice.get("/api/agents/bmm-tech-writer")
    assert response.status_code == 200
    assert response.json()["id"] == "writer"
    assert "tech-writer" in response.json()["aliases"]

"""/metrics is not public; HTTP metrics are labelled by route template; requests carry an id."""

from __future__ import annotations

import secrets

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from iaf.observability.metrics import start_metrics_listener
from iaf.settings import Settings
from tests.helpers import colleague, free_port, open_stream, serve_api, signup

MESSAGES_ROUTE = "/api/chat/rooms/{room_id}/messages"


def samples(text: str, name: str) -> list[dict[str, str]]:
    return [
        dict(sample.labels)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


async def test_metrics_are_absent_without_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


async def test_metrics_need_the_configured_token(settings: Settings, worker: object) -> None:
    token = secrets.token_urlsafe(24)
    guarded = settings.model_copy(update={"metrics_token": SecretStr(token)})
    async with serve_api(guarded) as url, httpx.AsyncClient(base_url=url) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            refused = await http.get("/metrics", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.json()["error"]["code"] == "unauthorized"
        alice = await signup(http)
        room = await alice.new_room()
        await alice.say(room["id"], "counted")
        invitation_token = secrets.token_urlsafe(16)
        invitation = await http.get(f"/api/chat/invitations/{invitation_token}")
        assert invitation.status_code == 404
        scraped = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    requests = samples(scraped.text, "iaf_http_requests_total")
    assert {"method": "POST", "route": MESSAGES_ROUTE, "status": "201"} in requests
    # Paths hold tokens and ids: only templates become labels.
    assert {"method": "GET", "route": "/api/chat/invitations/{token}", "status": "404"} in requests
    assert invitation_token not in scraped.text and room["id"] not in scraped.text
    durations = samples(scraped.text, "iaf_http_request_duration_seconds_count")
    assert {"method": "POST", "route": MESSAGES_ROUTE} in durations


async def test_unknown_paths_share_one_label(client: httpx.AsyncClient) -> None:
    before = REGISTRY.get_sample_value(
        "iaf_http_requests_total", {"method": "GET", "route": "unmatched", "status": "404"}
    )
    for path in ("/wp-admin", "/.env", "/api/nothing/here"):
        assert (await client.get(path)).status_code == 404
    after = REGISTRY.get_sample_value(
        "iaf_http_requests_total", {"method": "GET", "route": "unmatched", "status": "404"}
    )
    assert (after or 0) - (before or 0) == 3


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    first = await client.get("/healthz")
    assert len(first.headers["x-request-id"]) >= 16
    mine = await client.get("/healthz", headers={"X-Request-ID": "lb-0123456789abcdef"})
    assert mine.headers["x-request-id"] == "lb-0123456789abcdef"
    forged = await client.get("/healthz", headers={"X-Request-ID": '"},{"level":"ERROR'})
    assert forged.headers["x-request-id"].isalnum(), "not copied into the log line as is"


async def test_open_event_streams_are_counted(client: httpx.AsyncClient) -> None:
    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room(member_ids=[bob.id])
    before = REGISTRY.get_sample_value("iaf_sse_streams_open") or 0
    async with open_stream(client, bob, room["id"]) as stream:
        assert REGISTRY.get_sample_value("iaf_sse_streams_open") == before + 1
        fanned = REGISTRY.get_sample_value(
            "iaf_room_events_fanned_out_total", {"event": "message.new"}
        )
        await alice.say(room["id"], "to the stream")
        await stream.wait_for(lambda e: e.event == "message.new")
        after = REGISTRY.get_sample_value(
            "iaf_room_events_fanned_out_total", {"event": "message.new"}
        )
        assert (after or 0) - (fanned or 0) >= 1
    for _ in range(100):  # the server notices the closed stream on its next write
        if REGISTRY.get_sample_value("iaf_sse_streams_open") == before:
            break
        await alice.say(room["id"], "nudge")
    assert REGISTRY.get_sample_value("iaf_sse_streams_open") == before


def test_the_metrics_listener_binds_loopback_by_default(tmp_path) -> None:
    port = free_port()
    listener = start_metrics_listener(Settings(data_dir=tmp_path, metrics_port=port))
    assert listener is not None
    try:
        assert listener.server.server_address[0] == "127.0.0.1"
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert scraped.status_code == 200 and "iaf_sse_streams_open" in scraped.text
    finally:
        listener.close()
    assert start_metrics_listener(Settings(data_dir=tmp_path)) is None, "off unless configured"

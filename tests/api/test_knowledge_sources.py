"""Knowledge from a URL, against a local HTTP server: allowed hosts only (none by default),
robots.txt, size and type limits, retries with backoff, a sitemap, re-crawls, deletion."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from temporalio.client import WorkflowExecutionStatus

from iaf.settings import Settings
from iaf.workflow_calls import crawl_workflow_id
from tests.agent_helpers import temporal
from tests.helpers import serve_api, signup
from workers.main import running_worker

PAGE_LIMIT = 20_000


class Site:
    """A small website whose pages count their visits (to fail once, or change)."""

    def __init__(self) -> None:
        self.visits: dict[str, int] = {}
        self.port = 0

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{path:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        count = self.visits[path] = self.visits.get(path, 0) + 1
        pages: dict[str, Any] = {
            "/robots.txt": ("text/plain", "User-agent: *\nDisallow: /private\n"),
            "/sitemap.xml": ("application/xml", self.sitemap()),
            "/docs/alpha": (
                "text/html",
                "<html><head><title>Alpha guide</title><script>var leaked = 'scriptword';"
                "</script></head><body><nav>menu</nav><p>The quokka protocol restarts the"
                " ingestion daemon.</p></body></html>",
            ),
            "/docs/beta": ("text/plain", "Beta notes: the wombat cache expires hourly."),
            "/docs/big": ("text/plain", "x" * (PAGE_LIMIT + 1)),
            "/docs/image": ("image/png", "not text"),
            "/private/secret": ("text/plain", "never to be read"),
            "/docs/changing": ("text/plain", f"Version {count} of the changing page."),
        }
        if path == "/docs/flaky" and count == 1:
            return web.Response(status=503)
        if path == "/docs/flaky":
            return web.Response(text="The flaky page answers on the second try.")
        if path == "/docs/elsewhere":
            raise web.HTTPFound(self.url("/docs/alpha", host="localhost"))
        if path not in pages:
            return web.Response(status=404)
        content_type, body = pages[path]
        return web.Response(text=body, content_type=content_type)

    def sitemap(self) -> str:
        paths = ["/docs/alpha", "/docs/beta", "/private/secret", "/docs/flaky", "/docs/big"]
        paths += ["/docs/image", "/docs/elsewhere", "/docs/missing"]
        locs = [self.url(p) for p in paths] + [self.url("/docs/alpha", host="localhost")]
        items = "".join(f"<url><loc>{loc}</loc></url>" for loc in locs)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{items}</urlset>'
        )


@pytest.fixture(scope="module")
async def site() -> AsyncIterator[Site]:
    site = Site()
    runner = web.AppRunner(site.app())
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    site.port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield site
    await runner.cleanup()


@pytest.fixture(scope="module")
async def crawling(settings: Settings, worker: object) -> AsyncIterator[httpx.AsyncClient]:
    """An API and a worker of their own that may crawl 127.0.0.1 (not localhost)."""
    crawl_settings = settings.model_copy(
        update={
            "temporal_task_queue": f"crawl-{uuid.uuid4().hex[:8]}",
            "crawl_allowed_hosts": ["127.0.0.1"],
            "crawl_page_max_bytes": PAGE_LIMIT,
            "crawl_min_recrawl_minutes": 0.01,
        }
    )
    async with (
        running_worker(crawl_settings, serve_retrieval=False, sweep=False),
        serve_api(crawl_settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        yield http


async def _source(person, source_id):
    response = await person.get(f"/api/knowledge/sources/{source_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def _until(person, source_id, predicate, patience=90.0):
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        source = await _source(person, source_id)
        if predicate(source):
            return source
        assert asyncio.get_running_loop().time() < deadline, source
        await asyncio.sleep(0.3)


async def test_no_host_may_be_crawled_until_the_operator_allows_it(client, crawling, site):
    alice = await signup(client)
    refused = await alice.post(
        "/api/knowledge/sources", json={"url": site.url("/docs/alpha"), "scope": "org"}
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "crawl_disabled"
    bob = await signup(crawling)
    cases = [
        ({"url": site.url("/docs/alpha", host="localhost"), "scope": "org"}, "host_not_allowed"),
        ({"url": "ftp://127.0.0.1/file", "scope": "org"}, "invalid_url"),
        ({"url": site.url("/docs/alpha"), "scope": "org", "max_pages": 10_000}, "too_many_pages"),
        ({"url": site.url("/x"), "scope": "org", "recrawl_minutes": 0.001}, "recrawl_too_often"),
    ]
    for body, code in cases:
        response = await bob.post("/api/knowledge/sources", json=body)
        assert response.status_code == 422 and response.json()["error"]["code"] == code, body
    assert (await bob.get("/api/knowledge/sources")).json()["items"] == []


async def test_a_sitemap_is_crawled_within_the_rules(crawling, site):
    alice = await signup(crawling)
    room = await alice.new_room("docs")
    created = await alice.post(
        "/api/knowledge/sources",
        json={
            "url": site.url("/sitemap.xml"),
            "mode": "sitemap",
            "scope": "room",
            "room_id": room["id"],
        },
    )
    assert created.status_code == 202, created.text
    source = await _until(alice, created.json()["id"], lambda s: s["status"] in ("ready", "failed"))
    assert source["status"] == "ready", source
    pages = {p["url"].replace(site.url(""), ""): p for p in source["pages"]}
    stored = {path for path, p in pages.items() if p["status"] == "stored"}
    assert stored == {
        "/docs/alpha",
        "/docs/beta",
        "/docs/flaky",
    }, pages
    assert pages["/private/secret"]["reason"] == "disallowed by robots.txt"
    assert site.visits.get("/private/secret") is None
    assert pages["/docs/big"]["reason"] == f"over {PAGE_LIMIT} bytes"
    assert pages["/docs/image"]["reason"] == "type image/png"
    assert pages["/docs/elsewhere"]["reason"] == "host not allowed"  # a redirect to localhost
    assert pages["/docs/missing"]["reason"] == "HTTP 404"
    assert site.visits["/docs/flaky"] == 2  # a 503, then retried with backoff
    assert pages[site.url("/docs/alpha", host="localhost")]["reason"] == "host not allowed"
    assert site.visits.get("/docs/alpha") == 1  # the localhost entry was never fetched
    assert (source["pages_stored"], source["pages_skipped"]) == (3, 6)

    alpha = pages["/docs/alpha"]["document_id"]
    document = (await alice.get(f"/api/knowledge/documents/{alpha}")).json()
    assert document["title"] == "Alpha guide" and "quokka protocol" in document["content"]
    assert "scriptword" not in document["content"] and "menu" not in document["content"]
    assert document["scope"] == "room" and document["room_id"] == room["id"]
    deadline = asyncio.get_running_loop().time() + 90
    while (await alice.get(f"/api/knowledge/documents/{alpha}")).json()["status"] != "ready":
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.3)


async def test_a_page_is_crawled_again_on_its_interval_and_deleted_with_its_documents(
    crawling, site, settings
):
    alice = await signup(crawling)
    created = await alice.post(
        "/api/knowledge/sources",
        json={"url": site.url("/docs/changing"), "scope": "org", "recrawl_minutes": 0.02},
    )
    assert created.status_code == 202, created.text
    source_id = created.json()["id"]
    first = await _until(alice, source_id, lambda s: s["crawls"] >= 1 and s["status"] == "ready")
    first_document = first["pages"][0]["document_id"]
    assert first["next_crawl_at"] is not None
    again = await _until(
        alice, source_id, lambda s: s["pages"][0]["document_id"] not in (None, first_document)
    )
    assert again["crawls"] >= 2
    replaced = (await alice.get(f"/api/knowledge/documents/{first_document}")).json()
    assert replaced.get("status") in ("deleting", None)  # the old text is withdrawn

    current = again["pages"][0]["document_id"]
    assert (await alice.delete(f"/api/knowledge/sources/{source_id}")).status_code == 204
    assert (await alice.get(f"/api/knowledge/sources/{source_id}")).status_code == 404
    gone = await alice.get(f"/api/knowledge/documents/{current}")
    assert gone.status_code == 404 or gone.json()["status"] == "deleting"
    crawl_now = await alice.post(f"/api/knowledge/sources/{source_id}/crawl")
    assert crawl_now.status_code == 404
    # The workflow was cancelled with the source or, when a round began between the delete
    # and the cancel, it found the source gone and ended (tests/workflows covers mid-step).
    handle = (await temporal(settings)).get_workflow_handle(crawl_workflow_id(source_id))
    deadline = asyncio.get_running_loop().time() + 30
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.2)
    ended = (await handle.describe()).status
    if ended == WorkflowExecutionStatus.COMPLETED:
        assert (await handle.result())["status"] == "gone"
    else:
        assert ended == WorkflowExecutionStatus.CANCELED

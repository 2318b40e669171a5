"""CrawlKnowledge's activities, grouped by the client they need: HTTP (httpx) to the allowed
hosts, PostgreSQL for sources, pages and documents, Temporal to start ingestions by type name.

Inputs and results are ids and counts; URLs and page text stay in PostgreSQL (rule 2).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from iaf.crawl.web import (
    SITEMAP_TYPES,
    TEXT_TYPES,
    Skipped,
    Unavailable,
    crawl_delay,
    fetch,
    host_allowed,
    page_text,
    robots_allow,
    robots_for,
    sitemap_urls,
)
from iaf.db.models import KnowledgeSource
from iaf.db.repositories.knowledge import KnowledgeRepository
from iaf.db.repositories.knowledge_sources import KnowledgeSourceRepository
from iaf.settings import Settings
from iaf.workflow_calls import best_effort, start_vector_job
from schemas.crawl import CrawlInput, CrawlPlan, CrawlRound, CrawlSummary, PageOutcome, PageRef

log = logging.getLogger(__name__)
MAX_NESTED_SITEMAPS = 20


def _retry_later(error: Unavailable) -> ApplicationError:
    """Temporal retries it with the call site's backoff; the message names no URL."""
    return ApplicationError(f"server unavailable ({error.reason})", type="Unavailable")


class CrawlerActivities:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], temporal: Client, settings: Settings
    ) -> None:
        self.sessionmaker = sessionmaker
        self.temporal = temporal
        self.settings = settings

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.settings.crawl_timeout_seconds, follow_redirects=False
        )

    async def _discover(self, http: httpx.AsyncClient, source: KnowledgeSource) -> list[str]:
        """The page URLs of this crawl: the URL itself, or what its sitemap(s) list."""
        if source.mode == "page":
            return [source.url]
        pages: list[str] = []
        queue, seen = [source.url], 0
        while queue and seen < MAX_NESTED_SITEMAPS and len(pages) < source.max_pages:
            sitemap = queue.pop(0)
            seen += 1
            fetched = await fetch(http, sitemap, self.settings, SITEMAP_TYPES)
            found, nested = sitemap_urls(fetched.body)
            pages += found
            queue += [url for url in nested if host_allowed(url, self.settings)]
        return pages[: source.max_pages]

    @activity.defn(name="crawl_plan")
    async def plan(self, input: CrawlInput) -> CrawlPlan:
        """Start a round: robots.txt read and kept, pages listed (ids only to the workflow)."""
        async with self.sessionmaker() as session:
            sources = KnowledgeSourceRepository(session)
            source = await sources.get(input.source_id)
            if source is None:
                return CrawlPlan(status="gone")
            crawl = source.crawls + 1
            try:
                async with self._http() as http:
                    robots = await robots_for(http, source.url, self.settings)
                    urls = await self._discover(http, source)
            except Unavailable as error:
                raise _retry_later(error) from None
            except Skipped as skipped:
                await sources.update(source.id, status="failed", error=str(skipped), crawls=crawl)
                await session.commit()
                return CrawlPlan(status="crawl", crawl=crawl)
            page_ids = await sources.plan_pages(source.id, urls, crawl)
            await sources.update(
                source.id,
                status="crawling",
                crawls=crawl,
                robots_txt=robots,
                crawl_delay_seconds=crawl_delay(robots, self.settings),
                error=None,
            )
            await session.commit()
        return CrawlPlan(
            status="crawl",
            crawl=crawl,
            page_ids=page_ids,
            delay_seconds=crawl_delay(robots, self.settings),
            recrawl_seconds=source.recrawl_minutes * 60 if source.recrawl_minutes else None,
        )

    @activity.defn(name="crawl_page")
    async def page(self, input: PageRef) -> PageOutcome:
        """Fetch one page; a changed text becomes a new document (the old one is removed)."""
        async with self.sessionmaker() as session:
            sources = KnowledgeSourceRepository(session)
            source, page = await sources.get(input.source_id), await sources.page(input.page_id)
            if source is None or page is None:
                return PageOutcome(status="skipped")
            try:
                if not robots_allow(source.robots_txt, page.url, self.settings):
                    raise Skipped("disallowed by robots.txt")
                async with self._http() as http:
                    fetched = await fetch(http, page.url, self.settings, TEXT_TYPES)
                title, text = page_text(fetched)
                if not text.strip():
                    raise Skipped("no text")
            except Unavailable as error:
                raise _retry_later(error) from None
            except Skipped as skipped:
                await sources.set_page(page.id, status="skipped", reason=str(skipped)[:200])
                await session.commit()
                return PageOutcome(status="skipped")
            text = text.encode()[: self.settings.knowledge_max_bytes].decode(errors="ignore")
            text = text.replace("\x00", "")
            digest = hashlib.sha256(text.encode()).hexdigest()
            if digest == page.content_sha256 and page.document_id is not None:
                await sources.set_page(page.id, status="unchanged", reason=None)
                await session.commit()
                return PageOutcome(status="unchanged")
            documents = KnowledgeRepository(session)
            document = await documents.create(
                source.org_id, source.owner_id, source.scope, source.room_id, title, text
            )
            previous = page.document_id
            if previous is not None:
                await documents.set_status(previous, "deleting")
            await sources.set_page(
                page.id,
                status="stored",
                reason=None,
                document_id=document.id,
                content_sha256=digest,
            )
            await session.commit()
        await self._index(source, document.id, previous)
        return PageOutcome(status="stored")

    async def _index(
        self, source: KnowledgeSource, document_id: uuid.UUID, previous: uuid.UUID | None
    ) -> None:
        """By type name, best effort: the worker resumes pending and deleting documents."""
        start = start_vector_job(
            self.temporal,
            self.settings,
            "document",
            document_id,
            source.owner_id,
            room_id=source.room_id,
        )
        await best_effort(f"IngestKnowledge for {document_id}", start)
        if previous is not None:
            removal = start_vector_job(
                self.temporal,
                self.settings,
                "document",
                previous,
                source.owner_id,
                removal=True,
                room_id=source.room_id,
            )
            await best_effort(f"RemoveVectors for {previous}", removal)

    @activity.defn(name="crawl_finish")
    async def finish(self, input: CrawlRound) -> CrawlSummary:
        """Pages still pending ran out of retries: failed. The source says how the round went."""
        async with self.sessionmaker() as session:
            sources = KnowledgeSourceRepository(session)
            source = await sources.get(input.source_id)
            if source is None:
                return CrawlSummary(status="gone")
            for page in await sources.pages(source.id):
                if page.crawl == input.crawl and page.status == "pending":
                    await sources.set_page(page.id, status="failed", reason="server unavailable")
            tally = await sources.tally(source.id, input.crawl)
            usable = tally.get("stored", 0) + tally.get("unchanged", 0)
            # Discovery failed (the source says why), or not one page could be used.
            failed = input.failed or source.status == "failed" or not usable
            error = (source.error or "no page could be stored") if failed else None
            status = "failed" if failed else "ready"
            await sources.update(
                source.id,
                status=status,
                pages_stored=usable,
                pages_skipped=tally.get("skipped", 0) + tally.get("failed", 0),
                last_crawled_at=datetime.now(UTC),
                next_crawl_at=KnowledgeSourceRepository.next_crawl(source.recrawl_minutes),
                error=error,
            )
            await session.commit()
        return CrawlSummary(
            status=status,
            stored=tally.get("stored", 0),
            unchanged=tally.get("unchanged", 0),
            skipped=tally.get("skipped", 0),
            failed=tally.get("failed", 0),
        )

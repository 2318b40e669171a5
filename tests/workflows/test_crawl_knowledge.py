"""CrawlKnowledge on the real Temporal server: deleting a source cancels its crawl wherever the
crawl is, and no later step runs for a source that is gone."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError
from temporalio.worker import Worker

from schemas.crawl import CrawlInput, CrawlPlan, CrawlRound, CrawlSummary, PageOutcome, PageRef
from tests.agent_helpers import temporal
from workflows.crawl_knowledge import CrawlKnowledge


class _Site:
    """Stand-in crawler activities; `blocking` names the step that waits to be cancelled."""

    def __init__(self, blocking: str) -> None:
        self.blocking = blocking
        self.started: asyncio.Event = asyncio.Event()
        self.calls: list[str] = []

    async def _maybe_block(self, step: str) -> None:
        self.calls.append(step)
        if step != self.blocking:
            return
        self.started.set()
        while True:  # heartbeats carry the cancellation to the activity
            activity.heartbeat()
            await asyncio.sleep(0.2)

    @activity.defn(name="crawl_plan")
    async def plan(self, input: CrawlInput) -> CrawlPlan:
        await self._maybe_block("plan")
        return CrawlPlan(status="crawl", crawl=1, page_ids=[1, 2], recrawl_seconds=3600)

    @activity.defn(name="crawl_page")
    async def page(self, input: PageRef) -> PageOutcome:
        await self._maybe_block("page")
        return PageOutcome(status="stored")

    @activity.defn(name="crawl_finish")
    async def finish(self, input: CrawlRound) -> CrawlSummary:
        self.calls.append("finish")
        return CrawlSummary(status="ready", stored=2)


@pytest.mark.parametrize("blocking", ["plan", "page"])
async def test_a_crawl_cancelled_mid_step_ends_cancelled_without_another_step(settings, blocking):
    tc = await temporal(settings)
    site = _Site(blocking)
    queue = f"crawl-{uuid.uuid4()}"
    async with Worker(
        tc,
        task_queue=queue,
        workflows=[CrawlKnowledge],
        activities=[site.plan, site.page, site.finish],
    ):
        handle = await tc.start_workflow(
            CrawlKnowledge.run,
            CrawlInput(source_id=uuid.uuid4()),
            id=f"crawl-test-{uuid.uuid4()}",
            task_queue=queue,
        )
        await asyncio.wait_for(site.started.wait(), timeout=120)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert "finish" not in site.calls, site.calls  # nothing is written for a deleted source
    assert site.calls.count(blocking) == 1

"""CrawlKnowledge (`crawl-{source_id}`): fetch a page or a sitemap's pages into knowledge,
then, when the source asks for it, wait and crawl again.

Re-crawling is a durable timer in the workflow, not a Temporal Schedule: each source has its
own interval and a life (created, crawled now on demand, deleted) that this one execution
follows; a signal (`crawl_now`) wakes the timer, deleting the source cancels the workflow,
and each round continues as new so the history stays one round long. A Schedule would be a
second object per source to create, update and delete in step with the row.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.crawler import CrawlerActivities
    from schemas.crawl import CrawlInput, CrawlPlan, CrawlRound, CrawlSummary, PageRef

# A server that does not answer (5xx, 429, timeouts) is tried again with backoff: 2, 4, 8,
# 16 s, then the page is recorded as failed and the crawl goes on.
FETCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=5,
)
QUICK = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


@workflow.defn
class CrawlKnowledge:
    def __init__(self) -> None:
        self.crawl_requested = False

    @workflow.signal
    def crawl_now(self) -> None:
        self.crawl_requested = True

    @workflow.run
    async def run(self, input: CrawlInput) -> CrawlSummary:
        headline = f"crawl knowledge source {input.source_id}"
        workflow.set_current_details(f"{headline}, step: robots.txt and the list of pages")
        try:
            plan = await workflow.execute_activity_method(
                CrawlerActivities.plan,
                input,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=FETCH_RETRY,
            )
        except ActivityError as error:
            if is_cancelled_exception(error):
                raise  # the source was deleted while its round was being planned
            plan = None
        if plan is not None and plan.status == "gone":
            workflow.set_current_details(f"{headline}: the source was deleted")
            return CrawlSummary(status="gone")
        summary = await self._round(input, plan, headline)
        if plan is None or plan.recrawl_seconds is None:
            return summary
        due = workflow.now() + timedelta(seconds=plan.recrawl_seconds)
        workflow.set_current_details(
            f"{headline}: {summary.status}; next crawl at {due:%Y-%m-%d %H:%M} UTC"
        )
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self.crawl_requested, timeout=timedelta(seconds=plan.recrawl_seconds)
            )
        workflow.continue_as_new(input)

    async def _round(
        self, input: CrawlInput, plan: CrawlPlan | None, headline: str
    ) -> CrawlSummary:
        crawl = plan.crawl if plan is not None else 0
        for position, page_id in enumerate(plan.page_ids if plan is not None else []):
            if position and plan is not None and plan.delay_seconds:
                await workflow.sleep(timedelta(seconds=plan.delay_seconds))  # robots Crawl-delay
            workflow.set_current_details(
                f"{headline}, step: page {position + 1} of {len(plan.page_ids) if plan else 0}"
            )
            try:
                await workflow.execute_activity_method(
                    CrawlerActivities.page,
                    PageRef(source_id=input.source_id, page_id=page_id, crawl=crawl),
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=FETCH_RETRY,
                )
            except ActivityError as error:
                if is_cancelled_exception(error):
                    raise
                # Out of retries: `finish` records the page as failed and the crawl goes on.
        summary = await workflow.execute_activity_method(
            CrawlerActivities.finish,
            CrawlRound(source_id=input.source_id, crawl=crawl, failed=plan is None),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=QUICK,
        )
        workflow.set_current_details(
            f"{headline}: {summary.status}, {summary.stored} stored, {summary.unchanged}"
            f" unchanged, {summary.skipped} skipped, {summary.failed} failed"
        )
        return summary

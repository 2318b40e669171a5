"""The Temporal SDK's own metrics come out of the process's one scrape endpoint, under the
names the Grafana dashboard uses."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from iaf.observability.metrics import TemporalSdkMetrics
from tests.helpers import free_port

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards" / "iaf.json"


@activity.defn(name="metrics_probe")
async def probe(n: int) -> int:
    return n + 1


@workflow.defn(name="MetricsProbe")
class MetricsProbe:
    @workflow.run
    async def run(self, n: int) -> int:
        return await workflow.execute_activity(
            probe, n, start_to_close_timeout=timedelta(seconds=30)
        )


async def test_sdk_metrics_are_merged_into_ours_as_the_dashboard_names_them(
    temporal_server,
) -> None:
    address = f"127.0.0.1:{free_port()}"
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=address, durations_as_seconds=True)
        )
    )
    registry = CollectorRegistry()
    registry.register(TemporalSdkMetrics(f"http://{address}/metrics"))
    client = await Client.connect(temporal_server.address, runtime=runtime)
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
    )
    async with Worker(
        client,
        task_queue=queue,
        workflows=[MetricsProbe],
        activities=[probe],
        workflow_runner=runner,
    ):
        assert await client.execute_workflow(MetricsProbe.run, 1, id=queue, task_queue=queue) == 2
    exposed = generate_latest(registry).decode()
    names = {s.name for f in text_string_to_metric_families(exposed) for s in f.samples}
    assert "temporal_workflow_completed_total" in names
    assert "temporal_activity_execution_latency_bucket" in names
    assert "temporal_workflow_task_schedule_to_start_latency_bucket" in names
    used = {m for m in re.findall(r"temporal_[a-z_]+", DASHBOARD.read_text())}
    assert used and used <= names, (
        f"the dashboard uses what the SDK does not expose: {used - names}"
    )


def test_an_unreachable_sdk_endpoint_yields_nothing() -> None:
    registry = CollectorRegistry()
    registry.register(TemporalSdkMetrics(f"http://127.0.0.1:{free_port()}/metrics"))
    assert generate_latest(registry) == b""

"""Prometheus metrics of every process, and the Temporal SDK's own, on one scrape endpoint.

The metrics are module-level (the prometheus-client idiom) and labelled with bounded values
only: HTTP route templates (never paths, which hold tokens), agent ids from the persona
registry, event names, outcomes. The Temporal SDK (Core) serves its metrics from its own
Prometheus listener on a private loopback port; `TemporalSdkMetrics` reads them at each
scrape, so an operator scrapes one endpoint per process: the API's (`/metrics` with a
token, or `metrics_host:metrics_port`) or the worker's (`metrics_host:metrics_port`).
"""

from __future__ import annotations

import logging
import socket
import urllib.request
from collections.abc import Iterable
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from iaf.settings import Settings

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# --- API ----------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "iaf_http_requests", "HTTP requests by route template and status", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "iaf_http_request_duration_seconds",
    "Time to the end of the response (SSE streams are not observed)",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
SSE_STREAMS_OPEN = Gauge("iaf_sse_streams_open", "Server-Sent Event responses open")
EVENTS_FANNED_OUT = Counter(
    "iaf_room_events_fanned_out",
    "Room events handed to live subscribers on this API process (one per subscriber)",
    ["event"],
)

# --- workers ------------------------------------------------------------------------------
REPLIES_STARTED = Counter("iaf_replies_started", "AgentReply runs started", ["agent"])
REPLIES_ENDED = Counter(
    "iaf_replies_ended", "AgentReply runs ended, by outcome", ["agent", "outcome"]
)
FIRST_DELTA = Histogram(
    "iaf_reply_first_delta_seconds",
    "From the reply's start (agent_runs.created_at) to its first streamed delta",
    ["agent"],
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
)
LLM_TOKENS = Counter("iaf_llm_tokens", "Tokens of finished replies", ["agent", "kind"])
CREDITS_SPENT = Counter("iaf_credits_spent", "Credits charged for finished replies", ["agent"])
INGESTIONS = Counter("iaf_ingestions", "IngestKnowledge runs ended, by outcome", ["outcome"])
INGESTED_CHUNKS = Counter("iaf_ingested_chunks", "Knowledge chunks embedded and stored")
GDPR_REQUESTS = Gauge("iaf_gdpr_requests", "GDPR requests by kind and status", ["kind", "status"])
GDPR_OVERDUE = Gauge(
    "iaf_gdpr_requests_overdue", "Open GDPR requests past their due date (one month)", ["kind"]
)
GDPR_OLDEST_OPEN_AGE = Gauge(
    "iaf_gdpr_oldest_open_request_age_seconds", "Age of the oldest open request", ["kind"]
)
GDPR_NEAREST_DEADLINE = Gauge(
    "iaf_gdpr_seconds_to_nearest_deadline",
    "Time left before the earliest due date of an open request (negative: overdue)",
    ["kind"],
)
SWEEP_BACKLOG = Gauge(
    "iaf_sweep_backlog_messages", "Stored messages still waiting for RouteMessage (rule 5)"
)
SWEEP_STARTED = Counter(
    "iaf_sweep_routes_started", "RouteMessage runs the sweep started (Temporal was away)"
)


# --- the Temporal SDK's metrics -----------------------------------------------------------


class TemporalSdkMetrics(Collector):
    """Re-exposes what the SDK's Prometheus listener serves (on loopback) at each scrape."""

    def __init__(self, url: str) -> None:
        self.url = url

    def describe(self) -> Iterable[Metric]:
        return []  # names vary with what the SDK has seen; nothing to fetch at registration

    def collect(self) -> Iterable[Metric]:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:
                text = response.read().decode()
        except OSError as exc:
            log.debug("Temporal SDK metrics unavailable (%s)", type(exc).__name__)
            return []
        return list(text_string_to_metric_families(text))


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def install_temporal_runtime(settings: Settings) -> Runtime:
    """The process's default Temporal runtime: Core's log lines go through Python logging
    (so they are JSON lines like ours), and its metrics into this process's endpoint."""
    metrics = None
    if settings.metrics_port is not None:
        address = f"127.0.0.1:{_free_loopback_port()}"
        metrics = PrometheusConfig(bind_address=address, durations_as_seconds=True)
        REGISTRY.register(TemporalSdkMetrics(f"http://{address}/metrics"))
    runtime = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(
                    logger=logging.getLogger("temporalio.core"),
                    append_target_to_name=False,
                    prepend_target_on_message=False,
                    append_log_fields_to_message=False,  # they become JSON fields instead
                ),
            ),
            metrics=metrics,
        )
    )
    Runtime.set_default(runtime, error_if_already_set=False)
    return runtime


# --- the scrape endpoint ------------------------------------------------------------------


class MetricsListener:
    """`metrics_host:metrics_port`, serving every metric of this process."""

    def __init__(self, server: WSGIServer, thread: Thread) -> None:
        self.server = server
        self.thread = thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_metrics_listener(settings: Settings) -> MetricsListener | None:
    if settings.metrics_port is None:
        return None
    server, thread = start_http_server(settings.metrics_port, addr=settings.metrics_host)
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    return MetricsListener(server, thread)

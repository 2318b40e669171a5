"""OpenTelemetry traces across an HTTP request, the workflows it starts and their activities.

Off unless `otel_exporter_otlp_endpoint` is set: then spans go by OTLP/HTTP to
`<endpoint>/v1/traces`. The API opens one span per request (named by the route template,
see api/telemetry.py); the Temporal SDK's `TracingInterceptor`, on every client made by
`iaf.temporal_client.connect`, carries the context in workflow headers, so a worker's
workflow and activity spans join the request's trace, and so do the workflows an activity
starts. Spans carry ids only: route templates, workflow ids, status codes.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

from iaf.settings import Settings

_provider: TracerProvider | None = None


def install_tracing(
    settings: Settings, process: str, processor: SpanProcessor | None = None
) -> TracerProvider | None:
    """Trace this process when an OTLP endpoint is set, or into `processor` (tests)."""
    global _provider
    if processor is None:
        if not settings.otel_exporter_otlp_endpoint:
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))
    resource = Resource.create(
        {
            "service.name": settings.otel_service_name,
            "service.namespace": "iaf",
            "iaf.process": process,
        }
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(processor)
    _provider = provider
    return provider


def uninstall_tracing() -> None:
    """Flush and forget the provider (end of process, or of a test)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
    _provider = None


def tracer() -> trace.Tracer | None:
    return None if _provider is None else _provider.get_tracer("iaf")


def temporal_interceptors() -> list[Interceptor]:
    """For `Client.connect`: propagation into workflows and activities when tracing is on."""
    current = tracer()
    return [] if current is None else [TracingInterceptor(current)]

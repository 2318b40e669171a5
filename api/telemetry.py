"""At the edge of the API: a request id, a span, HTTP metrics and one log line per request;
and the token-guarded /metrics endpoint.

Everything is labelled with the route template (`/api/chat/rooms/{room_id}/messages`), never
the path: paths hold invitation and download tokens. A request that matched no route is
`unmatched`, so a scanner cannot grow the label set.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from fastapi import APIRouter, Request, Response
from opentelemetry import propagate
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import StateDep
from iaf.errors import ApiError
from iaf.observability.logs import ACCESS_LOGGER, REQUEST_ID
from iaf.observability.metrics import HTTP_DURATION, HTTP_REQUESTS, SSE_STREAMS_OPEN
from iaf.observability.tracing import tracer

access_log = logging.getLogger(ACCESS_LOGGER)
# A client's own request id is kept when it looks like one (a proxy's, a retry's).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def open_streams() -> int:
    return int(REGISTRY.get_sample_value("iaf_sse_streams_open") or 0)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
    return uuid.uuid4().hex


class HttpTelemetry:
    """Pure ASGI (not BaseHTTPMiddleware): streams pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = REQUEST_ID.set(request_id)
        method: str = scope["method"]
        response: dict[str, Any] = {"status": 500, "stream": False}
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                if headers.get("content-type", "").startswith("text/event-stream"):
                    response["stream"] = True
                    SSE_STREAMS_OPEN.inc()
            await send(message)

        try:
            with self._span(scope, method) as span:
                try:
                    await self.app(scope, receive, send_with_id)
                finally:
                    if span is not None:
                        _finish_span(span, scope, method, response["status"], request_id)
        finally:
            self._record(scope, method, response, time.perf_counter() - started)
            REQUEST_ID.reset(token)

    @staticmethod
    def _span(scope: Scope, method: str) -> AbstractContextManager[Span | None]:
        current = tracer()
        if current is None:
            return nullcontext()
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        # An exception's message may quote data: the span records its status code only.
        return current.start_as_current_span(
            method,
            kind=SpanKind.SERVER,
            context=propagate.extract(carrier),
            record_exception=False,
            set_status_on_exception=False,
        )

    @staticmethod
    def _record(scope: Scope, method: str, response: dict[str, Any], seconds: float) -> None:
        route, status = route_template(scope), response["status"]
        HTTP_REQUESTS.labels(method, route, str(status)).inc()
        if response["stream"]:
            SSE_STREAMS_OPEN.dec()
            access_log.info("%s %s %d: stream closed after %.1f s", method, route, status, seconds)
            return
        HTTP_DURATION.labels(method, route).observe(seconds)
        access_log.info("%s %s %d %.1f ms", method, route, status, seconds * 1000)


def _finish_span(span: Span, scope: Scope, method: str, status: int, request_id: str) -> None:
    route = route_template(scope)
    span.update_name(f"{method} {route}")
    span.set_attribute("http.request.method", method)
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    span.set_attribute("iaf.request_id", request_id)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request, state: StateDep) -> Response:
    """Prometheus text format, to the bearer of `metrics_token`; absent without one."""
    configured = state.settings.metrics_token
    if configured is None:
        raise ApiError(404, "not_found", "Not Found")
    offered = request.headers.get("authorization", "")
    expected = f"Bearer {configured.get_secret_value()}"
    if not hmac.compare_digest(offered.encode(), expected.encode()):
        raise ApiError(
            401, "unauthorized", "metrics need the metrics token", {"WWW-Authenticate": "Bearer"}
        )
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

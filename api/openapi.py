"""The OpenAPI document says what the API really answers: every error, whatever the route,
is `{"error": {"code", "message"}}` (api/errors.py), so every operation documents the 4xx and
503 it may return with that shape, instead of FastAPI's default `{"detail": [...]}` for 422.
The fuzzing suite (tests/api/test_fuzz_openapi.py) holds the API to this document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "stable, machine-readable"},
                "message": {"type": "string", "description": "for people"},
            },
        }
    },
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}

# Statuses any operation may answer, whatever it does: a client's mistake (4XX, including
# 401 without credentials, 413 for a body over the limit, 422 for invalid input and 429 past
# a rate limit) and 503 while PostgreSQL is unreachable (api/db_breaker.py).
COMMON_ERRORS = {
    "4XX": "The request was refused; `error.code` says why.",
    "503": "A dependency is unreachable; retry after `Retry-After` seconds.",
}


# Operations that answer a second success status with the same body: a repeated request
# that finds what an earlier one made (an open export, a pending invitation, a stored
# client_msg_id) is 200, a new one 201/202.
ALSO_ANSWERS = {
    ("get", "/api/user/data-export"): ("200", "202"),
    ("post", "/api/user/delete-account"): ("202", "200"),
    ("post", "/api/compliance/requests"): ("201", "200"),
    ("post", "/api/chat/rooms/{room_id}/invite"): ("201", "200"),
    ("post", "/api/chat/rooms/{room_id}/members"): ("201", "200"),
    ("post", "/api/chat/rooms/{room_id}/messages"): ("201", "200"),
}


def error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def with_error_responses(document: dict[str, Any]) -> dict[str, Any]:
    """Adds the error shape to every operation, in place; returns the document."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            documented, also = ALSO_ANSWERS.get((method, path), (None, None))
            if documented in responses and also is not None:
                responses.setdefault(also, {**responses[documented], "description": "Found"})
            for status, response in list(responses.items()):
                if status.startswith("4") or status.startswith("5"):
                    responses[status] = error_response(response.get("description", "Error"))
            for status, description in COMMON_ERRORS.items():
                responses.setdefault(status, error_response(description))
    return document


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_error_responses(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

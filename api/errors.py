"""Every error leaves as JSON {"error": {"code", "message"}}; client mistakes get a 4xx."""

from __future__ import annotations

import logging
from typing import Any

from asyncpg.exceptions import (
    AdminShutdownError,
    CannotConnectNowError,
    ConnectionDoesNotExistError,
    InterfaceError,
)
from asyncpg.exceptions import DataError as AsyncpgDataError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SqlalchemyTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from iaf.errors import ApiError

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
}


# PostgreSQL data exceptions (SQLSTATE class 22) that only a value sent by a client causes:
# invalid text representation, numeric value out of range, untranslatable character,
# string data right truncation, character not in repertoire (NUL in text), invalid escape.
_CLIENT_DATA_SQLSTATES = frozenset({"22P02", "22003", "22P05", "22001", "22021", "22025"})


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    # A message may quote client input (a field name): keep it encodable as UTF-8.
    message = message.encode("utf-8", "replace").decode("utf-8")
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _describe(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def client_data_error(exc: DBAPIError) -> str | None:
    """The SQLSTATE (or "client") when the database refused a value a client sent, else None.

    Besides the server's data exceptions, asyncpg refuses some values before sending them
    ("invalid input for query argument"): an integer beyond 64 bits (OverflowError) or text
    it cannot encode (UnicodeEncodeError). A wrong Python type (TypeError) is our bug: a 500.
    """
    error: BaseException | None = exc.orig
    for _ in range(5):
        if error is None:
            break
        sqlstate = getattr(error, "sqlstate", None)
        if sqlstate in _CLIENT_DATA_SQLSTATES:
            return str(sqlstate)
        if isinstance(error, AsyncpgDataError) and isinstance(
            error.__cause__, OverflowError | ValueError
        ):
            return "client"
        error = error.__cause__
    return None


# Errors that say the server is away, not that a statement was wrong: answered 503.
_UNREACHABLE = (
    OSError,
    TimeoutError,
    ConnectionDoesNotExistError,
    CannotConnectNowError,
    AdminShutdownError,
    InterfaceError,
)
DATABASE_RETRY_AFTER = "2"


def database_unreachable(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    error: BaseException | None = exc.orig
    for _ in range(5):
        if error is None:
            return False
        if isinstance(error, _UNREACHABLE):
            return True
        error = error.__cause__
    return False


def unavailable(request: Request) -> JSONResponse:
    """503 with Retry-After: the server is away, not the request wrong (the breaker in
    api/db_breaker.py then answers the next ones without waiting on it)."""
    state = getattr(request.app.state, "iaf", None)
    breaker = getattr(state, "breaker", None)
    retry_after = DATABASE_RETRY_AFTER
    if breaker is not None:
        retry_after = str(breaker.retry_after_seconds)
    return error_response(
        503,
        "database_unavailable",
        "the database is unreachable; retry shortly",
        {"Retry-After": retry_after},
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        code = (
            "malformed_json"
            if any(e.get("type") == "json_invalid" for e in errors)
            else "invalid_request"
        )
        return error_response(422, code, _describe(errors))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        """Backstop: validation should refuse such values first; a miss is still a 422."""
        if database_unreachable(exc):
            return unavailable(request)
        sqlstate = client_data_error(exc)
        if sqlstate is None:
            log.error("database error", exc_info=exc)
            return error_response(500, "internal_error", "internal error")
        log.warning(
            "%s %s: the database refused a value (%s: %s); validation should have",
            request.method,
            getattr(request.scope.get("route"), "path", "unmatched"),  # a path may hold a token
            sqlstate,
            type(exc.orig).__name__,
        )
        return error_response(
            422,
            "invalid_value",
            "a value in the request cannot be stored (out of range or not valid text)",
        )

    @app.exception_handler(SqlalchemyTimeout)
    async def pool_exhausted(request: Request, _: SqlalchemyTimeout) -> JSONResponse:
        return unavailable(request)

    @app.exception_handler(OSError)
    async def connection_refused(request: Request, exc: OSError) -> JSONResponse:
        """asyncpg raises OSError itself when the server refuses or drops the connection."""
        log.warning("%s %s: %s", request.method, request.url.path, type(exc).__name__)
        return unavailable(request)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "internal error")

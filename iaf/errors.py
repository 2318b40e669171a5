"""The error a request ends with: a status, a stable code and a message for people.

Services in the core raise it as routers do (a refused invitation, an unknown model), so it
lives below both; api/errors.py renders it as {"error": {"code", "message"}}.
"""

from __future__ import annotations


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers

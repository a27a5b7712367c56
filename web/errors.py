"""The one table that maps error types to HTTP status codes and WebSocket close codes.

HTTP errors answer ``{"error": {"code": …, "message": …, "details": {…}}}``; the code is stable
and machine-readable (docs/protocol.md lists them), the message is for people.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bidroom.errors import (
    BidroomError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    StoreError,
    UnauthenticatedError,
    ValidationError,
)

__all__ = [
    "HTTP_STATUS",
    "WS_CLOSE",
    "error_response",
    "exception_handlers",
    "status_for",
]

HTTP_STATUS: dict[type[BidroomError], int] = {
    ValidationError: 422,
    UnauthenticatedError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    StoreError: 503,
}

# WebSocket close codes (4000-4999 are the application's own; see docs/protocol.md)
WS_CLOSE: dict[str, int] = {
    "unauthenticated": 4001,  # no valid token within the first message / 10 s
    "slow_consumer": 4008,  # the outgoing queue overflowed: the client does not read
    "flooding": 4029,  # more messages than the rate limit allows
    "server_error": 1011,
    "going_away": 1001,  # the server is shutting down; reconnect
}


def status_for(error: BidroomError) -> int:
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def error_response(code: str, message: str, status: int,
                   details: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)


async def _bidroom_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BidroomError)
    return error_response(exc.code, exc.message, status_for(exc), exc.details or None)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(code, str(exc.detail), exc.status_code)


exception_handlers: dict[Any, Any] = {
    BidroomError: _bidroom_error,
    HTTPException: _http_error,
}

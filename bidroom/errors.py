"""The core's error types: one root, a few meaningful branches.

Every error carries a stable machine-readable ``code`` (snake_case, documented in
docs/protocol.md) and a human ``message``. ``web`` maps the branches to HTTP status codes and
WebSocket close codes in one table. A business refusal of a bid is *not* an error: it is a
``BidRejected`` event with a reason code. Errors mean a caller broke the protocol or a
dependency failed.

Must not import: market, web, or any driver.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BidroomError",
    "ConflictError",
    "ForbiddenError",
    "NotFoundError",
    "StoreError",
    "UnauthenticatedError",
    "ValidationError",
]


class BidroomError(Exception):
    """Root of every error the core and its adapters raise on purpose."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class ValidationError(BidroomError):
    """Input that does not fit: a missing field, a float price, an end before the start."""

    code = "invalid_input"


class UnauthenticatedError(BidroomError):
    """No credential, or one that is unknown, expired or revoked."""

    code = "unauthenticated"


class ForbiddenError(BidroomError):
    """An authenticated caller acting outside its role, organisation or invitation."""

    code = "forbidden"


class NotFoundError(BidroomError):
    code = "not_found"


class ConflictError(BidroomError):
    """The request is well formed but the current state does not allow it."""

    code = "conflict"


class StoreError(BidroomError):
    """Redis or SQL failed; adapters raise this ``from`` the driver's exception."""

    code = "store_unavailable"

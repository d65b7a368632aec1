"""The one error hierarchy of Arrears.

Every error a caller can cause is an `ArrearsError` carrying its HTTP status; the API
renders all of them with one handler as `application/problem+json` (RFC 9457). Code
below the API raises these and never builds HTTP responses itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "ArrearsError",
    "BadRequest",
    "Conflict",
    "FieldError",
    "Forbidden",
    "Invalid",
    "NotFound",
    "TooLarge",
    "Unauthorized",
]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad field: `field` is a dotted path in the caller's own field names."""

    field: str
    code: str
    message: str
    index: int | None = None


class ArrearsError(Exception):
    """Base of every error a client can cause; `status` is its HTTP status."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    slug: ClassVar[str | None] = None
    """The end of the problem's `type` URI; by default the status's phrase."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(ArrearsError):
    """The request cannot be read at all (e.g. malformed JSON)."""

    status = 400
    title = "Bad request"


class NotFound(ArrearsError):
    """The object does not exist *for this seller* (a foreign id is not found too)."""

    status = 404
    title = "Not found"


class Conflict(ArrearsError):
    status = 409
    title = "Conflict"


class Unauthorized(ArrearsError):
    status = 401
    title = "Unauthorized"


class Forbidden(ArrearsError):
    status = 403
    title = "Forbidden"


class TooLarge(ArrearsError):
    status = 413
    title = "Payload too large"


class Invalid(ArrearsError):
    """Input that breaks a rule; `errors` names every bad field, not just the first."""

    status = 422
    title = "Validation failed"

    def __init__(
        self,
        errors: list[FieldError],
        detail: str = "The request has invalid fields; see errors.",
    ) -> None:
        super().__init__(detail)
        self.errors = errors

    @classmethod
    def one(cls, field: str, code: str, message: str, index: int | None = None) -> Invalid:
        return cls([FieldError(field=field, code=code, message=message, index=index)])

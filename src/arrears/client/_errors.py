"""The client's exception hierarchy: every error of the API carries its problem+json body."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

__all__ = [
    "ApiError",
    "ArrearsClientError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "ForbiddenError",
    "InvalidError",
    "NotFoundError",
    "Problem",
    "ProblemError",
    "RateLimitedError",
    "ServerError",
    "TooLargeError",
    "TransportFailure",
    "UnexpectedResponse",
    "error_for",
]


@dataclass(frozen=True, slots=True)
class ProblemError:
    """One bad field of a validation problem (SPEC §2)."""

    field: str
    code: str
    message: str
    index: int | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """An `application/problem+json` body (RFC 9457), as the server sent it."""

    status: int
    title: str
    detail: str
    type: str = "about:blank"
    errors: tuple[ProblemError, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)


class ArrearsClientError(Exception):
    """Base of every exception the client raises."""


class TransportFailure(ArrearsClientError):
    """The server could not be reached (or kept answering 429/5xx) after every retry."""


class UnexpectedResponse(ArrearsClientError):
    """A successful status with a body the client cannot read."""


class ApiError(ArrearsClientError):
    """The server refused the request; `problem` is its problem+json body."""

    def __init__(self, problem: Problem, response: httpx.Response | None = None) -> None:
        fields = "".join(f"; {e.field}: {e.message}" for e in problem.errors[:10])
        more = f"; and {len(problem.errors) - 10} more" if len(problem.errors) > 10 else ""
        super().__init__(f"{problem.status} {problem.title}: {problem.detail}{fields}{more}")
        self.problem = problem
        self.response = response

    @property
    def status(self) -> int:
        return self.problem.status


class BadRequestError(ApiError):
    """400: the request cannot be read (e.g. malformed JSON)."""


class AuthenticationError(ApiError):
    """401: missing or wrong API key."""


class ForbiddenError(ApiError):
    """403: the key belongs to another seller."""


class NotFoundError(ApiError):
    """404: no such object for this seller."""


class ConflictError(ApiError):
    """409: e.g. a key already stored with other values, or an Idempotency-Key reused
    with another body."""


class TooLargeError(ApiError):
    """413: too many records or too large a body."""


class InvalidError(ApiError):
    """422: `problem.errors` names every bad field."""


class RateLimitedError(ApiError):
    """429 after every retry."""


class ServerError(ApiError):
    """5xx after every retry."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
    422: InvalidError,
    429: RateLimitedError,
}


def _problem_of(response: httpx.Response) -> Problem:
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        body = None
    if not isinstance(body, dict):
        return Problem(
            status=response.status_code,
            title=response.reason_phrase or "Error",
            detail=response.text[:500],
        )
    errors = tuple(
        ProblemError(
            field=str(e.get("field", "")),
            code=str(e.get("code", "")),
            message=str(e.get("message", "")),
            index=e["index"] if isinstance(e.get("index"), int) else None,
        )
        for e in body.get("errors") or ()
        if isinstance(e, dict)
    )
    return Problem(
        status=int(body.get("status") or response.status_code),
        title=str(body.get("title") or response.reason_phrase or "Error"),
        detail=str(body.get("detail") or ""),
        type=str(body.get("type") or "about:blank"),
        errors=errors,
        raw=body,
    )


def error_for(response: httpx.Response) -> ApiError:
    """The typed exception for an error answer."""
    kind = _BY_STATUS.get(response.status_code)
    if kind is None:
        kind = ServerError if response.status_code >= 500 else ApiError
    return kind(_problem_of(response), response)

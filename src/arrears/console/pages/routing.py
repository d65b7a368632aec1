"""What every console route shares: the route class that turns a missing session into
the sign-in page and an error into an HTML page, and reading a posted form."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse

from arrears.console.rendering import render
from arrears.console.sessions import NoSession
from arrears.domain.errors import ArrearsError, NotFound

__all__ = ["SIGN_IN", "console_router", "form_lists_of", "form_of", "see_other"]

SIGN_IN = "/console/sign-in"


class ConsoleRoute(APIRoute):
    """A page: no session → the sign-in page (303, with the page to come back to);
    an `ArrearsError` → an HTML page with its status (404 for a foreign id)."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            # PostgreSQL refuses text with NUL bytes (an error, not "no match"): a path
            # id with one names nothing, and the pages' queries never see one.
            request.scope["query_string"] = request.scope["query_string"].replace(b"%00", b"")
            try:
                if any("\x00" in str(value) for value in request.path_params.values()):
                    raise NotFound("There is no such page.")
                return await handler(request)
            except NoSession:
                back = request.url.path
                if request.method == "GET" and request.url.query:
                    back += "?" + request.url.query
                return see_other(f"{SIGN_IN}?{urlencode({'next': back})}")
            except ArrearsError as error:
                return render(
                    request, "error.html", error.status, title=error.title, detail=error.detail
                )

        return guarded


def console_router() -> APIRouter:
    return APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def form_of(request: Request) -> dict[str, str]:
    """A posted `application/x-www-form-urlencoded` form; the last value of a repeated
    field wins. (The body is bounded by the app's body limit.)"""
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


async def form_lists_of(request: Request) -> dict[str, list[str]]:
    """A posted form with every value of each field, in the order sent (a group of
    checkboxes sends its name once per ticked box)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    values: dict[str, list[str]] = {}
    for name, value in parse_qsl(body, keep_blank_values=True):
        values.setdefault(name, []).append(value)
    return values

"""Signing in with an API key, and out."""

from __future__ import annotations

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from arrears.api.context import Context
from arrears.console.pages.routing import SIGN_IN, console_router, form_of, see_other
from arrears.console.rendering import render
from arrears.console.sessions import (
    SIGN_IN_COOKIE,
    SessionOf,
    check_csrf,
    clear_session,
    new_sign_in_token,
    set_sign_in_token,
    sign_in,
    start_session,
)
from arrears.domain.errors import Unauthorized

router = console_router()


def _next_page(value: str | None) -> str:
    # Only a console page of this site: never an open redirect to another host.
    if value and value.startswith("/console") and not value.startswith("//"):
        return value
    return "/console"


def _form(request: Request, status_code: int = 200, error: str | None = None) -> Response:
    token = new_sign_in_token()
    response = render(
        request,
        "sign_in.html",
        status_code,
        csrf_token=token,
        next_page=_next_page(request.query_params.get("next")),
        error=error,
    )
    set_sign_in_token(request, response, token)
    return response


@router.get("/sign-in")
def sign_in_page(request: Request) -> Response:
    return _form(request)


@router.post("/sign-in")
async def sign_in_with_key(request: Request, context: Context) -> Response:
    form = await form_of(request)
    check_csrf(request.cookies.get(SIGN_IN_COOKIE, ""), form)
    try:
        cookie, expires = await run_in_threadpool(
            sign_in, context.database, form.get("api_key", "").strip(), context.clock.now()
        )
    except Unauthorized as refused:
        return _form(request, 401, refused.detail)
    response = see_other(_next_page(form.get("next")))
    start_session(request, response, cookie, expires)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: SessionOf) -> Response:
    check_csrf(session.csrf_token, await form_of(request))
    response = see_other(SIGN_IN)
    clear_session(request, response)
    return response

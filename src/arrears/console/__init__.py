"""The console (SPEC §14): server-rendered pages for a seller's operators, at `/console`.

One router module per page group under `console/pages`; templates and the stylesheet
beside them. Every page reads through `services/console.py` with the session's seller,
so a foreign id is a 404 exactly as in the API.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from arrears.console.pages import (
    contracts,
    corrections,
    credit_notes,
    customers,
    invoices,
    overview,
    sign_in,
    submissions,
    webhook_forms,
    webhooks,
)
from arrears.console.rendering import HERE

__all__ = ["install_console"]


def install_console(app: FastAPI) -> None:
    """Serve the console's pages under `/console` and its stylesheet under
    `/console/static`."""
    for module in (
        sign_in,
        overview,
        customers,
        contracts,
        invoices,
        corrections,
        credit_notes,
        submissions,
        # Before `webhooks`: its `/webhooks/new` must match ahead of `/webhooks/{id}`.
        webhook_forms,
        webhooks,
    ):
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

"""The FastAPI application: both wire surfaces over one domain core."""

from __future__ import annotations

from fastapi import FastAPI

from arrears.api.context import AppContext
from arrears.api.encoding import ArrearsJSONResponse
from arrears.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from arrears.api.problems import install_problem_handlers
from arrears.api.routers import admin, catalog, contracts, health, seller_profile
from arrears.config import Settings
from arrears.domain.clock import Clock, SystemClock, TestClock
from arrears.store.database import Database

__all__ = ["clock_for", "create_app"]


def clock_for(settings: Settings) -> Clock:
    """The real clock, or the test clock when ARREARS_TEST_CLOCK is set."""
    if settings.uses_test_clock:
        return TestClock(settings.test_clock_start)
    return SystemClock()


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """Build the app. Tests pass their own database and clock; `serve` passes none."""
    settings = settings or Settings()
    database = database or Database(settings.database_url)
    clock = clock or clock_for(settings)
    app = FastAPI(
        title="Arrears",
        summary="Metered billing in arrears.",
        version="0.1.0",
        default_response_class=ArrearsJSONResponse,
    )
    app.state.context = AppContext(settings=settings, database=database, clock=clock)
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(catalog.router)
    app.include_router(contracts.router)
    app.include_router(seller_profile.router)
    if settings.admin_token is not None:
        app.include_router(admin.router)
        if isinstance(clock, TestClock):
            app.include_router(admin.test_clock_router(clock))
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    # Outermost, so that even a refused body is logged with its request id.
    app.add_middleware(RequestContextMiddleware)
    return app

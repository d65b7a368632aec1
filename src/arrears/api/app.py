"""The FastAPI application: both wire surfaces over one domain core."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from arrears.api import webhook_payloads
from arrears.api.context import AppContext
from arrears.api.encoding import ArrearsJSONResponse
from arrears.api.fast_lane import FastLane
from arrears.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from arrears.api.openapi import install_openapi, operation_id
from arrears.api.problems import install_problem_handlers
from arrears.api.routers import (
    admin,
    billing_failures,
    catalog,
    consumption,
    contract_plans,
    contracts,
    corrections,
    discounts,
    documents,
    health,
    invoices,
    metrics,
    orders,
    profiles,
    seller_profile,
    usage,
    webhooks,
)
from arrears.api.task_waits import TaskWaits
from arrears.config import Settings, clock_for, lease_terms_for
from arrears.console import install_console
from arrears.domain.clock import Clock, TestClock
from arrears.store.unit_of_work import Database
from arrears.worker.runner import Worker, webhook_sending_for

__all__ = ["create_app"]


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
    task_waits = TaskWaits()
    webhook_payloads.install()
    worker = (
        Worker(
            database,
            clock,
            lease=lease_terms_for(settings),
            on_task_finished=task_waits.task_finished,
            webhooks=webhook_sending_for(settings),
        )
        if settings.embedded_worker
        else None
    )
    app = FastAPI(
        title="Arrears",
        summary="Metered billing in arrears.",
        version="0.1.0",
        default_response_class=ArrearsJSONResponse,
        lifespan=_lifespan(worker),
        generate_unique_id_function=operation_id,
        # Arrears reports through its own metrics and access line. FastAPI's OpenTelemetry
        # instrumentation, on by default, asks every request whether a provider has been
        # configured: 10-30 µs of CPU a request, for none.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.context = AppContext(
        settings=settings, database=database, clock=clock, worker=worker, task_waits=task_waits
    )
    install_problem_handlers(app)
    install_openapi(app, consumption.SCHEMAS)
    _include_routers(app, settings, clock)
    # Innermost: lane requests still pass the body limit, the request id and the metrics.
    app.add_middleware(FastLane, fastapi=app)
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_body_bytes,
        overrides=((consumption.BULK_PATH, settings.bulk_max_bytes),),
    )
    # Outermost, so that even a refused body is logged with its request id.
    app.add_middleware(RequestContextMiddleware, measure=settings.metrics)
    return app


def _lifespan(worker: Worker | None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The embedded worker, if any, runs while the app serves."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()

    return lifespan


def _include_routers(app: FastAPI, settings: Settings, clock: Clock) -> None:
    """Both wire surfaces, the console, and what the settings turn on."""
    app.include_router(health.router)
    app.include_router(catalog.router)
    app.include_router(contracts.router)
    app.include_router(contract_plans.router)
    app.include_router(usage.router)
    app.include_router(invoices.router)
    app.include_router(corrections.router)
    app.include_router(profiles.router)
    app.include_router(documents.router)
    app.include_router(orders.router)
    app.include_router(discounts.router)
    app.include_router(consumption.router)
    app.include_router(seller_profile.router)
    app.include_router(webhooks.router)
    webhooks.document_events(app)
    install_console(app)
    if settings.metrics:
        app.include_router(metrics.metrics_router(settings.metrics_token))
    if settings.admin_token is not None:
        app.include_router(admin.router)
        app.include_router(billing_failures.router)
        if isinstance(clock, TestClock):
            app.include_router(admin.test_clock_router(clock))

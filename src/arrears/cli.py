"""The `arrears` command: serve, db, sellers, keys, invoices."""

from __future__ import annotations

import json
import signal
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from arrears.client.commands import agent, submit
from arrears.config import Settings, clock_for, lease_terms_for
from arrears.document_commands import register as register_document_commands
from arrears.domain.clock import SystemClock
from arrears.domain.errors import ArrearsError, Invalid
from arrears.invoice_commands import invoices_app
from arrears.logs import configure_logging
from arrears.services import sellers as seller_service
from arrears.store import schema
from arrears.store.database import Database

if TYPE_CHECKING:
    from fastapi import FastAPI

app = typer.Typer(help="Arrears: metered billing in arrears.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
sellers_app = typer.Typer(help="Sellers (tenants).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of sellers.", no_args_is_help=True)
app.command()(submit)
app.command()(agent)
app.add_typer(db_app, name="db")
app.add_typer(sellers_app, name="sellers")
app.add_typer(keys_app, name="keys")
register_document_commands(invoices_app)
app.add_typer(invoices_app, name="invoices")

err = Console(stderr=True)

GIL_SWITCH_SECONDS = 0.0005


def _database() -> Database:
    return Database(Settings().database_url)


def _fail(error: ArrearsError) -> typer.Exit:
    err.print(f"[red]error:[/red] {error.detail}")
    if isinstance(error, Invalid):
        for field_error in error.errors:
            err.print(f"  {field_error.field}: {field_error.message}")
    return typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes, each with its own embedded worker: about one per "
            "core. On SQLite they queue for the one write lock, so writes do not scale, "
            "but everything else of a request does (docs/load.md).",
        ),
    ] = 1,
) -> None:
    """Migrate the database, then serve the API."""
    from arrears.api.app import create_app  # noqa: PLC0415 (only `serve` needs the app)

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    database = Database(settings.database_url)
    schema.upgrade(database)
    if workers == 1:
        run_server(create_app(settings, database=database), host=host, port=port)
        return
    database.dispose()  # each worker process opens its own connections
    from arrears.metrics import shared_between_processes  # noqa: PLC0415

    # One port, N processes: /metrics of any of them must show the sum of all.
    with shared_between_processes():
        run_server("arrears.cli:served_app", host=host, port=port, workers=workers)


def run_server(app: Any, *, host: str, port: int, workers: int = 1) -> None:
    """Serve the ASGI `app` (an app, or with `workers` > 1 the import string of a factory)
    as `arrears serve` does: uvicorn with its C HTTP parser and event loop (httptools,
    uvloop; chosen on measurement, docs/load.md), no access log of its own (the app logs
    one line per request), no `server` header. bench/_bare_app.py serves its floor
    through here, so that both are measured on the same server."""
    import uvicorn  # noqa: PLC0415 (only serving needs the server)

    share_the_gil()

    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        factory=workers > 1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        server_header=False,
    )


def share_the_gil(seconds: float = GIL_SWITCH_SECONDS) -> None:
    """Make a thread that holds the GIL hand it over after `seconds` (Python's default:
    5 ms) to another that waits for it.

    A server process runs the event loop and the group commit's writer thread. The
    writer lets go of the GIL at each SQLite or PostgreSQL call and then waits to get
    it back while the busy event loop keeps it for a whole switch interval: with three
    statements a post, a batch of 50 posts waited up to 750 ms. At 0.5 ms, posts/s at
    50 clients went from 1,085 to 1,682 on SQLite, p99 from 193 to 139 ms
    (docs/load.md)."""
    sys.setswitchinterval(seconds)


def served_app() -> FastAPI:
    """The app of one `serve --workers N` process (uvicorn starts them afresh, so each
    reads the settings, sets up logging and shares the GIL itself)."""
    from arrears.api.app import create_app  # noqa: PLC0415

    share_the_gil()
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


@app.command()
def worker(
    poll: Annotated[float, typer.Option(help="Seconds between looks for new tasks.")] = 1.0,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve this worker's Prometheus metrics on this port.")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Interface of the metrics port.")] = "127.0.0.1",
) -> None:
    """Run only the workers (tasks, billing and webhooks). Any number may run against one
    PostgreSQL database."""
    from arrears.api import webhook_payloads  # noqa: PLC0415
    from arrears.worker.runner import Worker, webhook_sending_for  # noqa: PLC0415

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    webhook_payloads.install()
    if metrics_port is not None:
        from prometheus_client import start_http_server  # noqa: PLC0415

        start_http_server(metrics_port, addr=metrics_host)
    runner = Worker(
        Database(settings.database_url),
        clock_for(settings),
        lease=lease_terms_for(settings),
        poll_seconds=poll,
        webhooks=webhook_sending_for(settings),
    )
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    err.print(f"worker {runner.owner} started")
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        runner.stop()


@app.command()
def bill() -> None:
    """Apply waiting tasks and bill every contract that is due now, then exit."""
    from arrears.api import webhook_payloads  # noqa: PLC0415
    from arrears.services.billing import run_billing  # noqa: PLC0415
    from arrears.worker.runner import Worker  # noqa: PLC0415

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    webhook_payloads.install()
    database = Database(settings.database_url)
    clock = clock_for(settings)
    tasks = Worker(database, clock, lease=lease_terms_for(settings)).run_tasks()
    run = run_billing(database, clock)
    typer.echo(
        f"{tasks} tasks applied; {run.invoices} invoices issued for {run.contracts} "
        f"contracts; {run.failed} contracts failed"
    )
    raise typer.Exit(code=1 if run.failed else 0)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply schema migrations (idempotent)."""
    database = _database()
    schema.upgrade(database, revision)
    typer.echo(f"database at revision {schema.current_revision(database)}")


@db_app.command("check")
def db_check() -> None:
    """Exit non-zero if the migrated schema differs from the models."""
    differences = schema.pending_differences(_database())
    for difference in differences:
        typer.echo(str(difference))
    raise typer.Exit(code=1 if differences else 0)


@sellers_app.command("create")
def sellers_create(
    name: Annotated[str, typer.Option(help="The seller's name.")],
    currency: Annotated[str, typer.Option(help="ISO 4217 currency.")] = "EUR",
    invoice_prefix: Annotated[str, typer.Option(help="Prefix of invoice numbers.")] = "INV",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Register a seller and print its first API key (shown only this once)."""
    database = _database()
    try:
        with database.registry_work() as work:
            issued = seller_service.create_seller(
                work,
                SystemClock(),
                name=name,
                currency_code=currency,
                invoice_prefix=invoice_prefix,
            )
    except ArrearsError as error:
        raise _fail(error) from None
    _print_key(issued, as_json)


@keys_app.command("create")
def keys_create(
    seller: Annotated[str, typer.Option(help="The seller id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Issue another API key for a seller."""
    try:
        with _database().registry_work() as work:
            issued = seller_service.issue_key(work, SystemClock(), seller)
    except ArrearsError as error:
        raise _fail(error) from None
    _print_key(issued, as_json)


@keys_app.command("revoke")
def keys_revoke(
    seller: Annotated[str, typer.Option(help="The seller id.")],
    key: Annotated[str, typer.Option(help="The key id.")],
) -> None:
    """Revoke an API key."""
    try:
        with _database().registry_work() as work:
            seller_service.revoke_key(work, SystemClock(), seller, key)
    except ArrearsError as error:
        raise _fail(error) from None
    typer.echo(f"revoked key {key}")


def _print_key(issued: seller_service.IssuedKey, as_json: bool) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                {"sellerId": issued.seller_id, "keyId": issued.key_id, "apiKey": issued.api_key}
            )
        )
    else:
        typer.echo(f"seller  {issued.seller_id}\nkey id  {issued.key_id}\napi key {issued.api_key}")
        err.print("[yellow]Keep the API key now: it is stored only as a hash.[/yellow]")

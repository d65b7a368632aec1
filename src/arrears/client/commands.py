"""`arrears submit` and `arrears agent`: consumption files to the seller consumption API.

Register them on the main app with `app.command()(submit)` and `app.command()(agent)`;
`commands_app` holds both for running them alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from arrears.client._agent import Agent, Spool
from arrears.client._base import DEFAULT_CHUNK_SIZE
from arrears.client._errors import ArrearsClientError
from arrears.client._files import FileError, SourceFile, errors_path, parse_map, read_source
from arrears.client._submission import FileOutcome, submit_source
from arrears.client._sync import Client

__all__ = ["agent", "commands_app", "submit"]

commands_app = typer.Typer(help="Submit consumption files to Arrears.", no_args_is_help=True)

_out = Console()
_err = Console(stderr=True)
_log = Console(stderr=True, log_path=False)

Url = Annotated[str, typer.Option("--url", envvar="ARREARS_URL", help="The Arrears server.")]
ApiKey = Annotated[
    str,
    typer.Option("--api-key", envvar="ARREARS_API_KEY", help="The seller's API key."),
]
SellerId = Annotated[
    str, typer.Option("--seller", envvar="ARREARS_SELLER_ID", help="The seller's id.")
]
Mapping = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="field=column where a column is named otherwise, e.g. --map quantity=qty "
        "(repeatable, or comma-separated).",
    ),
]
ChunkSize = Annotated[
    int,
    typer.Option(min=1, help="Records per bulk task (each chunk is all or nothing)."),
]


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:,.0f} records/s", style="progress.data.speed")


def _summary(outcomes: list[FileOutcome], dry_run: bool) -> Table:
    table = Table(title="Dry run: nothing saved" if dry_run else None)
    table.add_column("file")
    for name in ("records", "would save" if dry_run else "saved", "duplicates", "failed"):
        table.add_column(name, justify="right")
    for outcome in outcomes:
        table.add_row(
            str(outcome.source.path),
            f"{outcome.total:,}",
            f"{outcome.result.saved:,}",
            f"{outcome.result.duplicates:,}",
            f"[red]{len(outcome.failures):,}[/red] ({outcome.invalid:,} invalid)"
            if outcome.failures
            else "0",
        )
    return table


@commands_app.command()
def submit(
    files: Annotated[list[Path], typer.Argument(help="CSV, JSON or NDJSON files.")],
    *,
    api_key: ApiKey,
    seller: SellerId,
    url: Url = "http://127.0.0.1:8000",
    map_: Mapping = None,
    chunk_size: ChunkSize = DEFAULT_CHUNK_SIZE,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate only (?dryRun=true); save nothing.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Submit consumption files. Failed rows go to FILE.errors.csv (fix them and submit
    that file); exits 1 if any row failed. Submitting a file again never bills twice."""
    sources = _read_sources(files, map_ or [])
    outcomes: list[FileOutcome] = []
    bar = _progress_bar(progress)
    try:
        with Client(url, api_key, seller, chunk_size=chunk_size) as client, bar:
            for source in sources:
                task = bar.add_task(source.path.name, total=len(source.rows))
                bar.advance(task, sum(1 for row in source.rows if row.record is None))

                def advance(records: int, task: TaskID = task) -> None:
                    bar.advance(task, records)

                outcomes.append(
                    submit_source(
                        client,
                        source,
                        dry_run=dry_run,
                        on_progress=advance,
                    )
                )
    except ArrearsClientError as error:
        _err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=1) from None
    _out.print(_summary(outcomes, dry_run))
    for outcome in outcomes:
        if outcome.failures:
            _err.print(f"failed rows of {outcome.source.path}: {errors_path(outcome.source.path)}")
    raise typer.Exit(code=0 if all(o.ok for o in outcomes) else 1)


def _read_sources(files: list[Path], map_: list[str]) -> list[SourceFile]:
    """Every file read before anything is sent: a file that cannot be read exits 2."""
    try:
        mapping = parse_map(map_)
        sources = [read_source(path, mapping) for path in files]
    except (FileError, OSError) as error:
        _err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=2) from None
    for source in sources:
        if source.ignored_columns:
            _err.print(
                f"[yellow]{source.path}: ignoring columns {', '.join(source.ignored_columns)}"
                " (use --map to name a field's column)[/yellow]"
            )
    return sources


def _progress_bar(shown: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        console=_err,
        disable=not shown,
    )


@commands_app.command()
def agent(
    *,
    spool: Annotated[
        Path, typer.Option(help="Spool folder: incoming/, processing/, done/, failed/.")
    ],
    api_key: ApiKey,
    seller: SellerId,
    url: Url = "http://127.0.0.1:8000",
    map_: Mapping = None,
    chunk_size: ChunkSize = DEFAULT_CHUNK_SIZE,
    poll: Annotated[float, typer.Option(help="Seconds between looks at incoming/.")] = 2.0,
    once: Annotated[
        bool, typer.Option("--once", help="Exit when nothing is left to submit.")
    ] = False,
) -> None:
    """Submit every file dropped into SPOOL/incoming, unattended; move each to
    SPOOL/done or SPOOL/failed (with its .errors.csv). Resumes after a crash."""
    try:
        mapping = parse_map(map_ or [])
    except FileError as error:
        _err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=2) from None
    with Client(url, api_key, seller, chunk_size=chunk_size) as client:
        runner = Agent(client, Spool(spool), chunk_size, _log.log, mapping)
        try:
            failed = runner.run(poll=poll, once=once)
        except KeyboardInterrupt:
            failed = 0
    raise typer.Exit(code=1 if once and failed else 0)

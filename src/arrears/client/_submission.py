"""Submitting one consumption file and reporting its failed rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from arrears.client._files import SourceFile, SourceRow, errors_path, write_errors
from arrears.client._models import NOT_SAVED, BulkResult
from arrears.client._records import ConsumptionRecord
from arrears.client._sync import Client

__all__ = ["FileOutcome", "submit_source"]


@dataclass
class FileOutcome:
    """What became of a file's rows. `failures` are the rows not saved, in file order,
    with their error messages: the content of `FILE.errors.csv`."""

    source: SourceFile
    result: BulkResult
    failures: list[tuple[SourceRow, str]] = field(default_factory=list)
    invalid: int = 0
    """Rows of `failures` with errors of their own (the others were held back by their
    chunk: each chunk is all or nothing)."""

    @property
    def total(self) -> int:
        return len(self.source.rows)

    @property
    def ok(self) -> bool:
        return not self.failures


def submit_source(
    client: Client,
    source: SourceFile,
    *,
    chunk_size: int | None = None,
    dry_run: bool = False,
    known_tasks: Mapping[str, str] | None = None,
    on_task: Callable[[str, str], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    write_error_file: bool = True,
) -> FileOutcome:
    """Submit a file's valid rows; write `FILE.errors.csv` with every row not saved (or
    remove a stale one when all were saved)."""
    sent: list[SourceRow] = []
    records: list[ConsumptionRecord] = []
    for row in source.rows:
        if row.record is not None:
            sent.append(row)
            records.append(row.record)
    result = client.submit_bulk(
        records,
        chunk_size=chunk_size,
        dry_run=dry_run,
        known_tasks=known_tasks,
        on_task=on_task,
        on_progress=on_progress,
    )
    messages: dict[int, str] = {id(row): row.problem for row in source.rows if row.problem}
    invalid = len(messages)
    for failed in result.failed:
        messages[id(sent[failed.index])] = failed.message
        invalid += failed.errors[0].code != NOT_SAVED
    outcome = FileOutcome(source, result, invalid=invalid)
    outcome.failures = [(row, messages[id(row)]) for row in source.rows if id(row) in messages]
    if write_error_file:
        if outcome.failures:
            write_errors(source.path, source.columns, outcome.failures)
        else:
            errors_path(source.path).unlink(missing_ok=True)
    return outcome

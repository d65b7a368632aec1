"""Billing's CPU, apart from the machine's load: builds bench_billing's data, then runs
`run_billing` once under `time.process_time` (and cProfile with `--profile`).

Wall time on a shared machine follows the load; the CPU time of the billing process
(SQLite does its work in it) is the figure to compare between two commits, run
alternately. Batch sizes are fixed (`--batch`), so that the adaptive sizing, which
follows wall time, does not follow the load either.

    .venv/bin/python bench/profile_billing.py [--contracts 3000] [--entries 100] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from sqlalchemy import event

import bench_billing as b
from arrears.services import billing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--contracts", type=int, default=3000)
    parser.add_argument("--entries", type=int, default=100)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    _fix_batches(args.batch)
    with (
        tempfile.TemporaryDirectory() as workdir,
        b.fresh_database(args.db, Path(workdir), "billing") as url,
    ):
        database = b.Database(url)
        try:
            catalog = b.build_catalog(database)
            contract_ids = b.build_contracts(database, catalog, args.contracts)
            b.build_usage(database, args.db, catalog, contract_ids, args.entries)
            statements = _time_statements(database)
            profiler = cProfile.Profile() if args.profile else None
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            run = b.run_billing(database, b.TestClock(b.BILLED_AT))
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            assert run.failed == 0
            invoices = b.check(database, catalog, args.contracts, args.contracts * args.entries)
        finally:
            database.dispose()
    print(
        f"{args.db}: {invoices} invoices, cpu {cpu:.3f} s, wall {wall:.3f} s, "
        f"{invoices / cpu:,.0f} invoices per cpu-second"
    )
    for text, (count, seconds) in sorted(statements.items(), key=lambda s: -s[1][1])[:12]:
        print(f"{seconds:8.3f} s {count:6} x  {text}")
    if profiler:
        stats = pstats.Stats(profiler).sort_stats("tottime")
        stats.print_stats(35)
        stats.print_callers(r"method 'execute' of 'sqlite3|method 'fetchall' of 'sqlite3")
    return 0


def _time_statements(database: Any) -> dict[str, list[float]]:
    """CPU seconds spent in each statement (by its first words), through SQLAlchemy's events."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    started: list[float] = []

    def before(*_: Any) -> None:
        started.append(time.process_time())

    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        entry = totals[" ".join(statement.split())[:110]]
        entry[0] += 1
        entry[1] += time.process_time() - started.pop()

    for engine in {database.engine, database._read_engine}:
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
    return totals


def _fix_batches(size: int) -> None:
    # The adaptive sizing pinned: every batch holds `size` contracts.
    billing._FIRST_BATCH = size  # type: ignore[attr-defined]
    billing._next_size = lambda *_: size  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())

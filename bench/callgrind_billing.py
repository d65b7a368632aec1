"""Billing's instructions, apart from the machine's load: `run_billing` alone under
callgrind, on a copy of a database built once with bench_billing's data.

    .venv/bin/python bench/callgrind_billing.py build DIR [--contracts 1000]
    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=_operator_call \\
        .venv/bin/python bench/callgrind_billing.py run DIR [module:attr ...]

Only what runs inside `operator.call` is counted: `run_billing`, or with targets
(`arrears.services.billing:issue`, `arrears.store.invoices:InvoiceRepository.add_invoices`)
only those functions. Batches are pinned at 500 contracts, as in profile_billing.py.
To compare with an older commit, run the same script there (`PYTHONPATH=src`).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import operator
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import bench_billing as b
from arrears.services import billing


def build(where: Path, contracts: int) -> None:
    where.mkdir(parents=True, exist_ok=True)
    with b.fresh_database("sqlite", where, "seed") as url:
        database = b.Database(url)
        try:
            catalog = b.build_catalog(database)
            ids = b.build_contracts(database, catalog, contracts)
            b.build_usage(database, "sqlite", catalog, ids, 100)
        finally:
            database.dispose()


def run(where: Path, targets: list[str]) -> None:
    for target in targets:  # collected inside each target only
        module, path = target.split(":")
        owner: Any = importlib.import_module(module)
        *outer, name = path.split(".")
        for part in outer:
            owner = getattr(owner, part)
        setattr(owner, name, _counted(getattr(owner, name)))
    copy = where / f"run-{os.getpid()}.db"
    shutil.copy(where / "seed.db", copy)
    billing._FIRST_BATCH = 500  # type: ignore[attr-defined]
    billing._next_size = lambda *_: 500  # type: ignore[attr-defined]
    database = b.Database(f"sqlite:///{copy}")
    try:
        cpu = time.process_time()
        call = operator.call if not targets else (lambda f, *a: f(*a))
        ran = call(b.run_billing, database, b.TestClock(b.BILLED_AT))
        print(f"{ran}, cpu {time.process_time() - cpu:.3f} s")
    finally:
        database.dispose()
        for file in where.glob(f"{copy.name}*"):
            file.unlink()


def _counted(function: Any) -> Any:
    @functools.wraps(function)
    def counted(*args: Any, **kwargs: Any) -> Any:
        return operator.call(function, *args, **kwargs)

    return counted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("build", "run"))
    parser.add_argument("dir", type=Path)
    parser.add_argument("targets", nargs="*")
    parser.add_argument("--contracts", type=int, default=1000)
    args = parser.parse_args()
    if args.mode == "build":
        build(args.dir, args.contracts)
    else:
        run(args.dir, args.targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Ingestion's CPU, apart from the machine's load: the server's CPU seconds for one bulk
submission of bench_ingest's body, POST to `Successful` (several rounds, each with keys
of its own), and the CPU of reading the body in this process (`count_records` and
`decode_records`, median of `--reads`; and "on trust", with `decode_unconfirmed`, what a
worker reads before its first insert), with a cProfile of one read under `--profile`.

Wall time on a shared machine follows the load; CPU time is the figure to compare
between two commits, run alternately.

    .venv/bin/python bench/profile_ingest.py [--records 100000] [--rounds 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_ingest as b
from arrears.services import ingest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--contracts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reads", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as workdir,
        b.fresh_database("sqlite", Path(workdir), "service") as url,
        b.running_server(url, Path(workdir) / "server.log") as server,
    ):
        catalog = b.create_catalog(server, args.contracts)
        body = b.bulk_body(b.make_records(catalog, args.records))
        for label, read in (("read", _read_cpu), ("read on trust", _trusting_read_cpu)):
            reads = [read(body, args.records) for _ in range(args.reads)]
            print(
                f"{label} in this process: cpu median {statistics.median(reads):.3f} s "
                f"({', '.join(f'{r:.3f}' for r in reads)})"
            )
        for n in range(args.rounds):
            # Keys of the round's own (same length), so every record is new.
            round_body = body.replace(b'"key":"vm-', f'"key":"r{n}-'.encode())
            before = server.cpu_seconds()
            _, seconds = b.time_submission(server, catalog, round_body, None)
            cpu = server.cpu_seconds() - before
            print(f"round {n}: server cpu {cpu:.2f} s, wall {seconds:.3f} s")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(_read_cpu, body, args.records)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return 0


def _read_cpu(body: bytes, records: int) -> float:
    started = time.process_time()
    ingest.count_records(body, records)
    ingest.decode_records(body)
    return time.process_time() - started


def _trusting_read_cpu(body: bytes, records: int) -> float:
    """What a worker reads before its first insert since the checks moved beside the
    inserts (`decode_unconfirmed`; the POST, in a worker's own process, decodes this
    while it stores the body, `services/task_handover.py`)."""
    started = time.process_time()
    ingest.count_records(body, records)
    ingest.decode_unconfirmed(body)
    return time.process_time() - started


if __name__ == "__main__":
    sys.exit(main())

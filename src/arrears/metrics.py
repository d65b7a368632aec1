"""Prometheus metrics of the API, the task worker, billing and webhooks, all defined here.

Every metric lives in `prometheus_client`'s default registry of the process, so each
process (`arrears serve` with its embedded worker, each `arrears worker`) exposes its own
figures and Prometheus adds them up across targets (docs/operating.md, "Metrics"). The
exception is `arrears serve --workers N`: its N processes answer on one port, so they
share their figures through prometheus_client's multiprocess mode
(`shared_between_processes`), and `/metrics` of any of them shows the sum.

Labels never carry an id (seller, contract, task): the number of series stays bounded
whatever the traffic, and a scrape reveals nothing about any tenant.

Counting is done once per request, task, invoice or billing run, never per record, so
that the hot paths pay a few microseconds at most. Invoices are counted when the
transaction that issued them commits (`invoices_issued`): a rolled-back batch, a
preview or an interim invoice retried after a billing date passed is not counted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from arrears.domain.invoices import Invoice, InvoiceKind
from arrears.domain.tasks import Outcome, TaskStatus

__all__ = [
    "BILLING_CONTRACTS",
    "BILLING_FAILING_CONTRACTS",
    "BILLING_FAILURES",
    "BILLING_RUN_SECONDS",
    "HTTP_REQUESTS",
    "HTTP_REQUESTS_IN_PROGRESS",
    "HTTP_REQUEST_SECONDS",
    "INVOICES_ISSUED",
    "TASKS_APPLIED",
    "TASK_APPLY_SECONDS",
    "TASK_LATENCY_SECONDS",
    "TASK_RECORDS",
    "USAGE_ENTRIES_BILLED",
    "USAGE_POSTS_STORED",
    "WEBHOOK_DELIVERIES",
    "WEBHOOK_DELIVERY_SECONDS",
    "WEBHOOK_ENDPOINTS_DISABLED",
    "WEBHOOK_PENDING_AGE_SECONDS",
    "WORKER_ERRORS",
    "exposed_registry",
    "invoices_issued",
    "shared_between_processes",
    "task_finished",
]

# -- HTTP (api/middleware.py) --------------------------------------------------------

HTTP_REQUESTS = Counter(
    "arrears_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "arrears_http_request_duration_seconds",
    "Time from a request's arrival to its last response byte, by method and route template.",
    ["method", "route"],
    # Single posts take milliseconds; a 64 MiB bulk body takes seconds to upload.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
HTTP_REQUESTS_IN_PROGRESS = Gauge(
    "arrears_http_requests_in_progress",
    "HTTP requests being answered right now.",
    multiprocess_mode="livesum",
)

# -- ingestion ------------------------------------------------------------------------

USAGE_POSTS_STORED = Counter(
    "arrears_usage_posts_stored",
    "Usage entries stored by POST /api/v1/contracts/{contractId}/usage (Key replays excluded).",
)
TASKS_APPLIED = Counter(
    "arrears_tasks_applied",
    "Bulk consumption tasks finished, by outcome (successful or failed).",
    ["outcome"],
)
TASK_RECORDS = Counter(
    "arrears_task_records",
    "Records of finished bulk tasks: stored, duplicate (already stored with that key), or "
    "rejected (every record of a failed task: all or nothing).",
    ["result"],
)
_TASK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TASK_APPLY_SECONDS = Histogram(
    "arrears_task_apply_duration_seconds",
    "Time a worker took to claim, validate, apply and record one bulk task.",
    buckets=_TASK_BUCKETS,
)
TASK_LATENCY_SECONDS = Histogram(
    "arrears_task_latency_seconds",
    "Time from a bulk submission's 202 to its outcome being recorded (business clock).",
    buckets=_TASK_BUCKETS,
)

# -- billing --------------------------------------------------------------------------

INVOICES_ISSUED = Counter(
    "arrears_invoices_issued",
    "Invoices issued (committed), by kind: regular, interim or final.",
    ["kind"],
)
USAGE_ENTRIES_BILLED = Counter(
    "arrears_usage_entries_billed", "Usage entries billed on an issued invoice."
)
BILLING_RUN_SECONDS = Histogram(
    "arrears_billing_run_duration_seconds",
    "Duration of billing runs that found contracts due (idle polls are not observed).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0),
)
BILLING_CONTRACTS = Counter(
    "arrears_billing_contracts",
    "Contracts handled by billing runs: billed, or failed (retried by the next run).",
    ["result"],
)
BILLING_FAILURES = Counter(
    "arrears_billing_failures",
    "Billing attempts that failed for a reason of the contract's own (not an outage) and "
    "were recorded against it, by path: run (a billing run) or request (interim billing, "
    "an order that bills, a preview).",
    ["path"],
)
BILLING_FAILING_CONTRACTS = Gauge(
    "arrears_billing_failing_contracts",
    "Contracts whose last billing attempt failed and that no attempt has billed since, "
    "as the database held them at this process's last billing run.",
    # Every process reads the same count: the latest reading is the truth, not a sum.
    multiprocess_mode="mostrecent",
)
# -- webhooks (services/webhook_delivery.py) ------------------------------------------

WEBHOOK_DELIVERIES = Counter(
    "arrears_webhook_deliveries",
    "Webhook delivery attempts made, by outcome: succeeded (a 2xx), failed (any other "
    "answer, a timeout, a refused or unreachable target), or lease_lost (sent, but another "
    "worker had taken the attempt over meanwhile: not recorded).",
    ["outcome"],
)
WEBHOOK_DELIVERY_SECONDS = Histogram(
    "arrears_webhook_delivery_duration_seconds",
    "Time from sending an attempt to its receiver's answer (or its failure).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0),
)
WEBHOOK_PENDING_AGE_SECONDS = Gauge(
    "arrears_webhook_pending_age_seconds",
    "How long, on the business clock, the longest-waiting due delivery to an enabled "
    "endpoint has waited (0 when none waits), as this process's worker last read it.",
    multiprocess_mode="mostrecent",
)
WEBHOOK_ENDPOINTS_DISABLED = Counter(
    "arrears_webhook_endpoints_disabled",
    "Webhook endpoints disabled after failing every attempt for three days.",
)
WORKER_ERRORS = Counter(
    "arrears_worker_errors",
    "Worker loop iterations that failed and will be retried (e.g. database outage).",
    ["loop"],
)

# Every label value is known in advance: create the series at zero, so that `rate()` and
# `increase()` see the first event and dashboards do not show "no data".
for _kind in InvoiceKind:
    INVOICES_ISSUED.labels(_kind.value.lower())
for _status in TaskStatus:
    if _status is not TaskStatus.PROCESSING:
        TASKS_APPLIED.labels(_status.value.lower())
for _result in ("stored", "duplicate", "rejected"):
    TASK_RECORDS.labels(_result)
for _result in ("billed", "failed"):
    BILLING_CONTRACTS.labels(_result)
for _path in ("run", "request"):
    BILLING_FAILURES.labels(_path)
for _outcome in ("succeeded", "failed", "lease_lost"):
    WEBHOOK_DELIVERIES.labels(_outcome)
for _loop in ("tasks", "billing", "webhooks"):
    WORKER_ERRORS.labels(_loop)


MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's own variable: where the processes of one server keep their values."""


def exposed_registry() -> CollectorRegistry:
    """What `/metrics` shows: this process's metrics, or in multiprocess mode those of
    every process of the server, added up (built afresh per scrape, as
    prometheus_client requires)."""
    if not os.environ.get(MULTIPROCESS_DIR):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


@contextmanager
def shared_between_processes() -> Iterator[None]:
    """Multiprocess mode for the server processes started inside the block: they keep
    their values in one fresh directory, removed when the block ends.

    The processes must be started afresh (uvicorn spawns its workers), since
    prometheus_client reads the variable when it is imported. An operator's own
    `PROMETHEUS_MULTIPROC_DIR` is used as it is (it must be empty at start)."""
    if os.environ.get(MULTIPROCESS_DIR):
        yield
        return
    directory = tempfile.mkdtemp(prefix="arrears-metrics-")
    os.environ[MULTIPROCESS_DIR] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_DIR]
        shutil.rmtree(directory, ignore_errors=True)


def task_finished(outcome: Outcome, *, waited: timedelta | None = None) -> None:
    """Count a task whose outcome was committed; `waited`: since its submission."""
    TASKS_APPLIED.labels(outcome.status.value.lower()).inc()
    if outcome.errors:
        TASK_RECORDS.labels("rejected").inc(outcome.total_records)
    else:
        TASK_RECORDS.labels("stored").inc(outcome.saved_records)
        TASK_RECORDS.labels("duplicate").inc(outcome.duplicate_records)
    if waited is not None:
        TASK_LATENCY_SECONDS.observe(max(waited.total_seconds(), 0.0))


_PENDING = "arrears.metrics.issued"
"""Key in `Session.info`: what the session's open transaction issued, until it ends."""


@dataclass(slots=True)
class _Issued:
    kinds: Tally[str] = field(default_factory=Tally)
    usage_entries: int = 0


def invoices_issued(session: Session, invoices: Iterable[Invoice]) -> None:
    """Count `invoices` once the session's transaction commits (and never if it rolls
    back). Call it in the transaction that stores them.

    Only the outermost transaction counts: invoices stored in a savepoint that is rolled
    back inside a transaction that commits would be counted. No caller does that (a
    failed invoice insert raises through its savepoint and rolls back everything)."""
    issued: _Issued = session.info.setdefault(_PENDING, _Issued())
    for invoice in invoices:
        issued.kinds[invoice.draft.kind.value.lower()] += 1
        # Every billed entry is on exactly one line: a sum over lines, not entries.
        issued.usage_entries += sum(len(line.usage_ids) for line in invoice.draft.lines)


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    issued: _Issued | None = session.info.pop(_PENDING, None)
    if issued is None:
        return
    for kind, count in issued.kinds.items():
        INVOICES_ISSUED.labels(kind).inc(count)
    USAGE_ENTRIES_BILLED.inc(issued.usage_entries)


@event.listens_for(Session, "after_transaction_end")
def _forget_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    # After a commit `_count_committed` has already taken them; after a rollback of the
    # whole transaction they were never issued.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)

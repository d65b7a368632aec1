"""Whole-API fuzzing (issue #7): schemathesis generates requests for every operation of
the service's own OpenAPI, on SQLite and PostgreSQL, and every answer must hold:

- no 5xx, ever (SPEC §2);
- every response has a documented status code and content type and matches the
  documented schema;
- every 4xx is `application/problem+json` with `type`, `title`, `status` and `detail`;
- a request that breaks the schema is refused; a request without its key, or with a
  wrong one, is refused; what was created can be read, what was deleted cannot.

The fuzzer works in a seeded world (`tests/fuzz_world.py`) as a real seller: path
parameters, id query parameters and id fields of bodies are often real ids (its own, or
another seller's), so that requests reach real behaviour and not only 404s. Admin
operations use the admin token.

Two tests per database: one runs schemathesis' examples, coverage and fuzzing phases
on each operation; one runs its stateful phase, chaining operations along the links it
infers from the schema (a created contract's `Id` into `/contracts/{contractId}/...`).
The budget is bounded and the generation derandomized, so CI is reproducible; more
examples locally: `ARREARS_FUZZ_EXAMPLES=500 ARREARS_FUZZ_SCENARIOS=200` (see
docs/development.md).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import AuthContext, Case, CheckContext, HookContext, Response
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok
from schemathesis.engine import events, from_schema
from schemathesis.generation.meta import TestPhase
from schemathesis.specs.openapi.schemas import OpenApiSchema

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.store.database import Database
from tests.billing_factories import app_without_worker
from tests.conftest import ADMIN_TOKEN
from tests.fuzz_world import (
    VALID_VALUES,
    FuzzWorld,
    build_world,
    decimal_texts_in_grammar,
    decimal_texts_outside_grammar,
    instant_texts_in_grammar,
    instant_texts_outside_grammar,
)
from tests.ingest_factories import new_metered_seller, record, send, usage

EXAMPLES = int(os.environ.get("ARREARS_FUZZ_EXAMPLES", "25"))
"""Generated examples per operation in the fuzzing phase."""

SCENARIOS = int(os.environ.get("ARREARS_FUZZ_SCENARIOS", "50"))
"""Sequences of operations in the stateful phase."""

SEED = 20260101

# A decimal may come as a string (`format: decimal`): generate strings that are decimals,
# with the places the API takes, so that such requests reach real behaviour too.
schemathesis.openapi.format(
    "decimal",
    st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False).map(
        str
    ),
)

# Schemathesis' `positive_data_acceptance` expects every schema-valid request to be
# accepted; ours refuse many with 422 for rules no JSON schema states (an unknown
# currency code, a DueDate outside the contract, an id that names nothing). Every
# other check of schemathesis runs, together with `problem_details` below.
DISABLED_CHECKS = ("positive_data_acceptance",)

# The fuzzer's dates stay near the seeded world's, whose contracts start on 2026-01-01
# and whose clock stands at 2026-02-01: a generated instant is often replaced by one in
# the 60 days after `NEAR`, a contract never starts before `EARLIEST_START`, and the test
# clock moves forward in steps of at most `CLOCK_STEP` and not past `CLOCK_LIMIT`. A
# contract that started in 1900, or a clock in 7999, has thousands of periods due, and
# every billing run, preview and interim billing of it issues (or rehearses) them all
# first: seconds to minutes per request, which would spend the budget on one slow path
# instead of on breadth.
NEAR = datetime(2026, 1, 1, tzinfo=UTC)
EARLIEST_START = datetime(2025, 12, 1, tzinfo=UTC)
CLOCK_STEP = timedelta(days=15)
CLOCK_LIMIT = datetime(2026, 4, 1, tzinfo=UTC)


@schemathesis.check
def problem_details(_ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """SPEC §2: every 4xx is `application/problem+json` with a `type`, a `title`, a
    `detail` and a `status` equal to the response's."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type == "application/problem+json", (
        f"{case.operation.label} answered {response.status_code} as {content_type!r}"
    )
    body = response.json()
    assert isinstance(body, dict), f"a problem is an object, not {body!r}"
    missing = [name for name in ("type", "title", "detail") if not isinstance(body.get(name), str)]
    assert not missing, f"the problem has no {missing}: {body!r}"
    assert body.get("status") == response.status_code, f"status differs: {body!r}"
    return True


# -- the tests ------------------------------------------------------------------------------


def test_every_operation_answers_within_its_contract(fuzzed: Fuzzed) -> None:
    run = fuzzed.run(examples=True, coverage=True, fuzzing=True)
    assert not run.problems, run.report()
    untested = fuzzed.operations - run.statuses.keys()
    assert not untested, f"operations the fuzzer never called: {sorted(untested)}"
    # It reached real behaviour: every operation succeeded at least once.
    never_succeeded = {
        label: dict(run.statuses[label])
        for label in fuzzed.operations
        if not any(200 <= status < 300 for status in run.statuses[label])
    }
    assert not never_succeeded, f"operations that never answered 2xx: {never_succeeded}"


def test_sequences_of_operations_answer_within_their_contract(fuzzed: Fuzzed) -> None:
    run = fuzzed.run(stateful=True)
    assert not run.problems, run.report()
    assert run.links > 0, "schemathesis inferred no links between operations"


# -- the seeded app and the fuzzer -----------------------------------------------------------


@dataclass
class FuzzRun:
    """What one run of the schemathesis engine found."""

    problems: list[str] = field(default_factory=list)
    """Each failed check or engine error, with a request that reproduces it."""
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    """Per operation, how often it answered each status code."""
    checks: Counter[str] = field(default_factory=Counter)
    """How often each check ran."""
    links: int = 0
    """Links between operations that the stateful phase followed."""
    seconds: dict[str, float] = field(default_factory=dict)
    """When each phase ended, in seconds since the run started (for `summary`)."""

    def report(self) -> str:
        shown = "\n\n".join(self.problems[:20])
        more = len(self.problems) - 20
        return f"{len(self.problems)} problems\n\n{shown}" + (
            f"\n\n... {more} more" if more > 0 else ""
        )

    def summary(self) -> str:
        """Requests and statuses per operation, and the phases' times."""
        lines = [
            f"{label}: {dict(sorted(self.statuses[label].items()))}"
            for label in sorted(self.statuses)
        ]
        requests = sum(sum(counts.values()) for counts in self.statuses.values())
        lines.append(f"{requests} requests on {len(self.statuses)} operations, {self.links} links")
        lines.append(f"checks run: {dict(sorted(self.checks.items()))}")
        lines.append(f"phases ended at (s): {self.seconds}")
        return "\n".join(lines)


@dataclass
class Fuzzed:
    """The seeded app, and how to fuzz it."""

    app: FastAPI
    world: FuzzWorld
    clock: TestClock
    operations: set[str] = field(default_factory=set)

    def run(
        self,
        *,
        examples: bool = False,
        coverage: bool = False,
        fuzzing: bool = False,
        stateful: bool = False,
    ) -> FuzzRun:
        schema = self._schema(
            {
                "examples": {"enabled": examples},
                "coverage": {"enabled": coverage},
                "fuzzing": {"enabled": fuzzing},
                "stateful": {
                    "enabled": stateful,
                    "max-steps": 10,
                    "generation": {"max-examples": SCENARIOS},
                },
            }
        )
        self.operations = {
            result.ok().label for result in schema.get_all_operations() if isinstance(result, Ok)
        }
        return _execute(schema)

    def _schema(self, phases: dict[str, Any]) -> OpenApiSchema:
        config = schemathesis.Config.from_dict(
            {
                "seed": SEED,
                "workers": 1,
                "cache": {"enabled": False},
                "generation": {
                    "max-examples": EXAMPLES,
                    "deterministic": True,
                    "database": "none",
                    # A failure is reported as found: shrinking it (several times in a
                    # stateful run) can take many minutes. ARREARS_FUZZ_SHRINK=1 shrinks.
                    "no-shrink": not os.environ.get("ARREARS_FUZZ_SHRINK"),
                },
                "checks": {name: {"enabled": False} for name in DISABLED_CHECKS},
                "phases": phases,
            }
        )
        schema = schemathesis.openapi.from_asgi("/openapi.json", self.app, config=config)
        _authenticate(schema, self.world)
        _use_known_values(schema, self.world, self.clock)
        return schema


@pytest.fixture
def fuzzed(settings: Settings, database: Database, clock: TestClock) -> Fuzzed:
    # No embedded worker: bulk tasks are applied and contracts billed only when a request
    # asks for it (`POST /admin/billing/run`), so every run sends the same requests.
    app = app_without_worker(settings, database, clock)
    with TestClient(app) as client:
        world = build_world(client)
    return Fuzzed(app, world, clock)


def _execute(schema: OpenApiSchema) -> FuzzRun:
    run = FuzzRun()
    started = time.perf_counter()
    for event in from_schema(schema).execute():
        if isinstance(event, events.PhaseStarted) and event.payload is not None:
            run.links += event.payload.transitions_selected
        elif isinstance(event, events.PhaseFinished) and event.phase.is_enabled:
            run.seconds[event.phase.name.value] = round(time.perf_counter() - started, 1)
        elif isinstance(event, events.ScenarioFinished):
            _record(run, event)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            run.problems.append(f"schemathesis error: {event}")
    if os.environ.get("ARREARS_FUZZ_REPORT"):
        print(run.summary())  # asked for; seen with pytest -s
    return run


def _record(run: FuzzRun, event: events.ScenarioFinished) -> None:
    recorder = event.recorder
    for case_id, node in recorder.cases.items():
        label = node.value.operation.label
        interaction = recorder.interactions.get(case_id)
        if interaction is None or interaction.response is None:
            continue
        run.statuses[label][interaction.response.status_code] += 1
    for case_id, checks in recorder.checks.items():
        for check in checks:
            run.checks[check.name] += 1
            if check.failure_info is None:
                continue
            failure = check.failure_info.failure
            interaction = recorder.interactions.get(case_id)
            answer = (
                interaction.response.status_code if interaction and interaction.response else None
            )
            run.problems.append(
                f"[{event.phase.value}] {check.name}: {failure.title} (answered {answer})\n"
                f"{failure.message}\n{check.failure_info.code_sample}"
            )


def _authenticate(schema: OpenApiSchema, world: FuzzWorld) -> None:
    class Keys:
        """The seller's API key, or the admin token on `/admin`."""

        def get(self, _case: Case, ctx: AuthContext) -> str:
            if ctx.operation.path.startswith("/admin"):
                return ADMIN_TOKEN
            return world.seller.api_key

        def set(self, case: Case, token: str, _ctx: AuthContext) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

    schema.auth(refresh_interval=None)(Keys)


# Body and query fields whose value the fuzzer may replace by a known one, in any of the
# API's spellings (lower-cased), by the kind of value they hold (see `FuzzWorld.known`).
_KNOWN_FIELDS = {
    "customerid": "customerId",
    "planid": "planId",
    "planvariantid": "planVariantId",
    "contractid": "contractId",
    "subscriptionid": "contractId",
    "subscriptionids": "contractId",
    "componentid": "componentId",
    "productid": "componentId",
    "itemcode": "itemCode",
    "currency": "currency",
    "pricing": "pricing",
    "billingperiod": "billingPeriod",
    "quantity": "decimal",
    "freequota": "decimal",
    "recurringfee": "decimal",
    "taxrate": "decimal",
    "priceperunit": "decimal",
    "price": "decimal",
    "amount": "decimal",
    "url": "webhookUrl",
    "events": "eventType",
    "percentage": "percentage",
    "discountid": "discountId",
}
_DATE_FIELDS = {
    "duedate",
    "startdate",
    "enddate",
    "changedate",
    "from",
    "to",
    "paidat",
    "validuntil",
}
# The path parameter an owned id needs beside it to name something (see `FuzzWorld.owned`).
_OWNERS = {"usageId": "contractId", "keyId": "sellerId", "deliveryId": "webhookId"}
_REAL = 0.75
"""How often a generated value is replaced by a known one ..."""
_OWN = 0.6
"""... and by one of the fuzzer's own (the rest of the time, by another seller's id)."""


def _use_known_values(schema: OpenApiSchema, world: FuzzWorld, clock: TestClock) -> None:
    """Three times in four, a generated id, currency, pricing, billing period or date is
    replaced by a known one (a date by one near the world's time), in the parts of a
    request that were generated valid: a part generated to break the schema (to test
    that it is refused) is sent as it was generated. In the stateful phase ids are left
    alone: there the links carry them from the responses that created their objects.
    The choices are drawn by hypothesis, so they are derandomized and shrink too."""

    def known(generated: Any, kind: str, rnd: random.Random) -> Any:
        own, foreign = world.known.get(kind, ()), world.foreign.get(kind, ())
        draw = rnd.random()
        if draw >= _REAL or not (own or foreign):
            return generated
        # Mostly the fuzzer's own objects, sometimes another seller's.
        return rnd.choice(foreign if foreign and (draw >= _OWN or not own) else own)

    def walk(value: Any, rnd: random.Random, ids: bool, name: str = "") -> Any:
        kind = _KNOWN_FIELDS.get(name)
        if kind is not None and not isinstance(value, list):
            is_id = kind not in VALID_VALUES
            return known(value, kind, rnd) if ids or not is_id else value
        if name in _DATE_FIELDS:
            return _near_date(value, rnd, keep_far_past=name != "startdate")
        if isinstance(value, dict):
            return {key: walk(item, rnd, ids, str(key).lower()) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, rnd, ids, name) for item in value]
        return value

    def path_ids(path: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
        chosen = {
            name: known(value, name, rnd) for name, value in path.items() if name not in _OWNERS
        }
        for name, value in path.items():
            if name in _OWNERS:
                owned = world.owned[name].get(chosen.get(_OWNERS[name], ""), ())
                use_owned = owned and rnd.random() < _REAL
                chosen[name] = rnd.choice(owned) if use_owned else known(value, name, rnd)
        return chosen

    @schema.hook
    def flatmap_case(_ctx: HookContext, case: Case) -> Any:
        # A closure, not a functools.partial: hypothesis describes a partial with its
        # arguments, and describing a large generated body is slow (and warns).
        def with_known_values(rnd: random.Random) -> Case:
            ids = case.meta is None or case.meta.phase.name != TestPhase.STATEFUL
            # Assigning a part makes schemathesis check it against the schema again.
            if ids and case.path_parameters and _generated_valid(case, ParameterLocation.PATH):
                case.path_parameters = path_ids(case.path_parameters, rnd)
                if case.method == "PATCH" and "planVariantId" in case.path_parameters:
                    case.path_parameters = _changeable_variant(case.path_parameters, rnd)
                if "invoiceId" in case.path_parameters:
                    case.path_parameters = _payable_invoice(case, rnd)
            if case.query and _generated_valid(case, ParameterLocation.QUERY):
                case.query = walk(case.query, rnd, ids)
            if isinstance(case.body, dict) and _generated_valid(case, ParameterLocation.BODY):
                if case.operation.path == "/admin/clock":
                    case.body = _bounded_clock_move(case.body, clock)
                else:
                    case.body = walk(case.body, rnd, ids)
            return case

        return st.randoms(use_true_random=False).map(with_known_values)

    def _changeable_variant(path: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
        if rnd.random() >= _REAL:
            return path
        return {**path, "planVariantId": rnd.choice(world.known["changeablePlanVariantId"])}

    def _payable_invoice(case: Case, rnd: random.Random) -> dict[str, Any]:
        # Payments go to an invoice kept for them, mostly; nothing else may credit or
        # void it (schemathesis also reuses ids that responses showed it).
        path, payable = case.path_parameters, world.known["payableInvoiceId"]
        if case.method == "POST" and case.operation.path.endswith("/payments"):
            return {**path, "invoiceId": rnd.choice(payable)} if rnd.random() < _REAL else path
        if case.method == "POST" and path["invoiceId"] in payable:
            return {**path, "invoiceId": rnd.choice(world.known["invoiceId"])}
        return path

    @schema.hook
    def filter_failure(_ctx: HookContext, failure: Any, case: Case, response: Response) -> bool:
        if not isinstance(failure, AcceptedNegativeData):
            return True
        # A body over the size limit is refused with 413 (SPEC §2), which schemathesis
        # does not count among refusals.
        return response.status_code != 413 and not _bulk_records_checked_later(case)


def _generated_valid(case: Case, location: ParameterLocation) -> bool:
    return case.meta is None or not case.meta.is_negative_at(location)


def _near_date(value: Any, rnd: random.Random, *, keep_far_past: bool) -> Any:
    """A valid instant replaced, three times in four, by one in the 60 days after
    `NEAR`; invalid text is left as it is. A contract's start before `EARLIEST_START` is
    always replaced (`keep_far_past=False`)."""
    instant = _instant(value)
    if instant is None or not 1900 <= instant.year <= 7999:
        return value
    if rnd.random() >= _REAL and (keep_far_past or instant >= EARLIEST_START):
        return value
    return (NEAR + timedelta(seconds=rnd.randrange(60 * 86_400))).isoformat()


def _bulk_records_checked_later(case: Case) -> bool:
    """A bulk submission is stored as sent and its records validated by the worker, all
    or nothing (SPEC §6): a bad record fails the task, not the POST, which checks only
    the outer shape `{"consumptions": [...]}` (and a dry run answers 200 `Failed`)."""
    body = case.body
    return (
        case.operation.path.endswith("/bulkconsumptions")
        and isinstance(body, dict)
        and set(body) == {"consumptions"}
        and isinstance(body["consumptions"], list)
    )


def _bounded_clock_move(body: Any, clock: TestClock) -> Any:
    """`{"now": ...}` moved at most `CLOCK_STEP` ahead of the clock, and not past
    `CLOCK_LIMIT`; a `now` in the past (409) or not an instant (422) is left as it is."""
    wanted = _instant(body.get("now")) if isinstance(body, dict) else None
    now = clock.now()
    if wanted is None or wanted <= now:
        return body
    step = timedelta(seconds=(wanted - now).total_seconds() % CLOCK_STEP.total_seconds())
    return {**body, "now": min(now + step, max(now, CLOCK_LIMIT)).isoformat()}


def _instant(value: Any) -> datetime | None:
    """`value` as an aware instant, if it is one."""
    if not isinstance(value, str):
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return None
    return instant if instant.tzinfo is not None else None


# -- the grammars, fuzzed on both surfaces -----------------------------------------------------

_GRAMMAR_EXAMPLES = int(os.environ.get("ARREARS_FUZZ_EXAMPLES", "25"))


@pytest.mark.parametrize("in_grammar", [True, False])
def test_a_decimal_text_is_refused_as_not_a_decimal_exactly_when_outside_the_grammar(
    client: TestClient, in_grammar: bool
) -> None:
    """SPEC §2: on the usage API and in bulk records alike, a quantity string is
    `not_a_decimal` exactly when it is outside the one decimal grammar (its other rules,
    sign, size and places, may still refuse a string of the grammar)."""
    metered = new_metered_seller(client)
    texts = decimal_texts_in_grammar() if in_grammar else decimal_texts_outside_grammar()

    @hypothesis_settings(max_examples=_GRAMMAR_EXAMPLES, deadline=None, derandomize=True)
    @given(texts)
    def check(text: str) -> None:
        posted = send(
            client, "POST", metered.usage_path(), metered, usage(metered.component_id, text)
        )
        rec = record(metered.contract_id, metered.component_id, text)
        dry = send(
            client, "POST", metered.bulk_path + "?dryRun=true", metered, {"consumptions": [rec]}
        )
        assert posted.status_code in (201, 422), posted.text
        assert dry.status_code == 200, dry.text
        usage_codes = _codes(posted, "Quantity")
        bulk_codes = {e["code"] for e in dry.json()["errors"] if e["field"] == "quantity"}
        assert ("not_a_decimal" in usage_codes) is not in_grammar, (text, posted.text)
        assert usage_codes == bulk_codes, (text, usage_codes, bulk_codes)

    check()


@pytest.mark.parametrize("in_grammar", [True, False])
def test_a_timestamp_text_is_refused_as_invalid_datetime_exactly_when_outside_the_grammar(
    client: TestClient, in_grammar: bool
) -> None:
    """SPEC §5: on the usage API and in bulk records alike, a due date is
    `invalid_datetime` exactly when it is outside the one timestamp grammar (a due date
    of the grammar may still lie outside the contract)."""
    metered = new_metered_seller(client)
    texts = instant_texts_in_grammar() if in_grammar else instant_texts_outside_grammar()

    @hypothesis_settings(max_examples=_GRAMMAR_EXAMPLES, deadline=None, derandomize=True)
    @given(texts)
    def check(text: str) -> None:
        body = usage(metered.component_id, DueDate=text)
        posted = send(client, "POST", metered.usage_path(), metered, body)
        rec = record(metered.contract_id, metered.component_id, dueDate=text)
        dry = send(
            client, "POST", metered.bulk_path + "?dryRun=true", metered, {"consumptions": [rec]}
        )
        assert posted.status_code in (201, 422), posted.text
        assert dry.status_code == 200, dry.text
        usage_codes = _codes(posted, "DueDate")
        bulk_codes = {e["code"] for e in dry.json()["errors"] if e["field"] == "dueDate"}
        assert ("invalid_datetime" in usage_codes) is not in_grammar, (text, posted.text)
        assert usage_codes == bulk_codes, (text, usage_codes, bulk_codes)

    check()


def _codes(response: Any, field: str) -> set[str]:
    if response.status_code != 422:
        return set()
    return {e["code"] for e in response.json()["errors"] if e["field"] == field}

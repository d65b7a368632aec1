"""SPEC §6: bulk consumption submitted as an asynchronous, all-or-nothing task."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from arrears.api.app import create_app
from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.domain.money import MAX_INTEGER_DIGITS
from arrears.services import ingest
from arrears.store.database import Database
from arrears.store.tables import TaskRow
from arrears.worker.runner import Worker
from tests.factories import ADMIN
from tests.ingest_factories import (
    START,
    MeteredSeller,
    encode,
    exact,
    new_metered_seller,
    problem,
    record,
    run_bulk,
    send,
    submit_bulk,
    total_count,
    usage,
    wait_for_task,
)

UNKNOWN_ID = "0" * 24


def _app_with(settings: Settings, database: Database, clock: TestClock, **limits: int) -> Any:
    return create_app(settings.model_copy(update=limits), database=database, clock=clock)


def _outcome(task: dict[str, Any]) -> tuple[str, int, int, int]:
    return (
        task["message"],
        task["totalRecords"],
        task["savedRecords"],
        task["duplicateRecords"],
    )


def _errors(task: dict[str, Any]) -> list[tuple[int | None, str | None, str, str]]:
    return [(e["index"], e["subscriptionId"], e["field"], e["code"]) for e in task["errors"]]


def _keyed(metered: MeteredSeller, count: int, prefix: str = "r") -> list[dict[str, Any]]:
    """`count` valid keyed records over the seller's contracts and components."""
    contracts, components = metered.contract_ids, metered.component_ids
    return [
        record(
            contracts[n % len(contracts)],
            components[n % len(components)],
            Decimal(n) / 4,
            key=f"{prefix}-{n}",
            dueDate=f"2026-01-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
        )
        for n in range(count)
    ]


# -- a submission's life ------------------------------------------------------------------


def test_a_submission_answers_202_with_a_task_and_its_location_then_succeeds(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    records = [
        record(metered.contract_id, metered.component_id, Decimal("12.5"), key="vm-42/a"),
        record(metered.contract_id, metered.component_ids[1], "0.000001", description="egress"),
        record(metered.contract_id, metered.component_id, 3, price=Decimal("0.25")),
    ]
    response = send(client, "POST", metered.bulk_path, metered, {"consumptions": records})
    assert response.status_code == 202, response.text
    task_id = response.json()["taskId"]
    assert isinstance(task_id, str)
    assert task_id
    assert response.headers["Location"] == f"{metered.bulk_path}/{task_id}"

    task = wait_for_task(client, response.headers["Location"], metered.headers)
    assert task == {
        "taskId": task_id,
        "message": "Successful",
        "totalRecords": 3,
        "savedRecords": 3,
        "duplicateRecords": 0,
        "errors": [],
        "createdAt": START,
        "completedAt": START,
    }
    entries = exact(client.get(metered.usage_path(), headers=metered.headers))
    by_quantity = {entry["Quantity"]: entry for entry in entries}
    assert set(by_quantity) == {Decimal("12.5"), Decimal("0.000001"), 3}
    assert by_quantity[Decimal("12.5")]["Key"] == "vm-42/a"
    assert by_quantity[Decimal("0.000001")]["Memo"] == "egress"
    assert by_quantity[3]["ProductOverride"]["PricePerUnit"] == Decimal("0.25")
    assert {entry["DueDate"] for entry in entries} == {"2026-01-15T00:00:00Z"}


def test_one_bad_record_fails_the_whole_submission_and_every_bad_record_is_named(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client, contracts=2)
    records = _keyed(metered, 1_000)
    bad = {
        7: {"subscriptionId": UNKNOWN_ID},
        500: {"quantity": -1},
        999: {"dueDate": "2025-12-31T23:59:59Z"},
    }
    submitted = [{**r, **bad.get(n, {})} for n, r in enumerate(records)]
    failed = run_bulk(client, metered, submitted)
    assert _outcome(failed) == ("Failed", 1_000, 0, 0)
    assert _errors(failed) == [
        (7, UNKNOWN_ID, "subscriptionId", "not_found"),
        (500, records[500]["subscriptionId"], "quantity", "negative"),
        (999, records[999]["subscriptionId"], "dueDate", "before_contract_start"),
    ]
    assert all(error["message"] for error in failed["errors"])
    assert [total_count(client, metered, c) for c in metered.contract_ids] == [0, 0]

    corrected = run_bulk(client, metered, records)
    assert _outcome(corrected) == ("Successful", 1_000, 1_000, 0)
    assert corrected["errors"] == []
    assert [total_count(client, metered, c) for c in metered.contract_ids] == [500, 500]

    resubmitted = run_bulk(client, metered, records)
    assert _outcome(resubmitted) == ("Successful", 1_000, 0, 1_000)
    assert [total_count(client, metered, c) for c in metered.contract_ids] == [500, 500]


def test_an_empty_submission_succeeds_with_nothing_saved(client: TestClient) -> None:
    metered = new_metered_seller(client)
    assert _outcome(run_bulk(client, metered, [])) == ("Successful", 0, 0, 0)


# -- naming the product -------------------------------------------------------------------


def test_item_code_names_the_product_instead_of_product_id(client: TestClient) -> None:
    metered = new_metered_seller(client)
    by_code = {"subscriptionId": metered.contract_id, "itemCode": "ITEM-1", "quantity": 2}
    both = {**by_code, "productId": metered.component_ids[1], "quantity": 3}
    task = run_bulk(client, metered, [by_code, both])
    assert _outcome(task) == ("Successful", 2, 2, 0)
    entries = client.get(metered.usage_path(), headers=metered.headers).json()
    assert {entry["ComponentId"] for entry in entries} == {metered.component_ids[1]}


def test_a_product_named_wrongly_or_not_at_all_is_an_error(client: TestClient) -> None:
    metered = new_metered_seller(client)
    contract = metered.contract_id
    records = [
        {"subscriptionId": contract, "productId": metered.component_id, "itemCode": "ITEM-1"},
        {"subscriptionId": contract, "itemCode": "NO-SUCH-ITEM"},
        {"subscriptionId": contract},
        {"subscriptionId": contract, "productId": metered.unmetered_component_id},
        {"subscriptionId": contract, "itemCode": "ITEM-0"},  # the only good one
    ]
    task = run_bulk(client, metered, [{**r, "quantity": 1} for r in records])
    assert _errors(task) == [
        (0, contract, "itemCode", "mismatch"),
        (1, contract, "itemCode", "not_found"),
        (2, contract, "productId", "required"),
        (3, contract, "productId", "not_in_plan"),
    ]
    assert total_count(client, metered) == 0


# -- due dates ----------------------------------------------------------------------------


def test_due_date_defaults_to_the_time_of_submission_not_of_application(
    manual_client: TestClient, database: Database, clock: TestClock
) -> None:
    metered = new_metered_seller(manual_client)
    clock.move_to(clock.now().replace(day=10, hour=8))
    location = submit_bulk(
        manual_client,
        metered,
        [{"subscriptionId": metered.contract_id, "productId": metered.component_id, "quantity": 1}],
    )
    clock.move_to(clock.now().replace(day=20))  # the worker applies the task ten days later
    assert Worker(database, clock).run_until_idle() == 1
    task = wait_for_task(manual_client, location, metered.headers)
    assert _outcome(task) == ("Successful", 1, 1, 0)
    assert task["createdAt"] == "2026-01-10T08:00:00Z"
    assert task["completedAt"] == "2026-01-20T08:00:00Z"
    entry = manual_client.get(metered.usage_path(), headers=metered.headers).json()[0]
    assert entry["DueDate"] == "2026-01-10T08:00:00Z"
    assert entry["TransferredAt"] == "2026-01-20T08:00:00Z"


def test_a_due_date_without_offset_is_utc(client: TestClient) -> None:
    metered = new_metered_seller(client)
    dates = ["2026-01-05T10:00:00", "2026-01-05T12:00:00+02:00", "2026-01-06"]
    records = [
        record(metered.contract_id, metered.component_id, n, dueDate=d) for n, d in enumerate(dates)
    ]
    assert _outcome(run_bulk(client, metered, records)) == ("Successful", 3, 3, 0)
    entries = client.get(metered.usage_path(), headers=metered.headers).json()
    assert {e["Quantity"]: e["DueDate"] for e in entries} == {
        0: "2026-01-05T10:00:00Z",
        1: "2026-01-05T10:00:00Z",
        2: "2026-01-06T00:00:00Z",
    }


def test_due_dates_outside_the_contract_are_errors(client: TestClient) -> None:
    metered = new_metered_seller(client)
    ended = send(
        client,
        "POST",
        f"/api/v1/contracts/{metered.contract_id}/end",
        metered,
        {"EndDate": "2026-03-01T00:00:00Z"},
    )
    assert ended.status_code == 200, ended.text
    dates = [
        "2025-12-31T23:59:59Z",
        "2026-01-01T00:00:00Z",
        "2026-03-01T00:00:00Z",
        "2026-03-01T00:00:01Z",
    ]
    records = [record(metered.contract_id, metered.component_id, dueDate=d) for d in dates]
    task = run_bulk(client, metered, records)
    assert _errors(task) == [
        (0, metered.contract_id, "dueDate", "before_contract_start"),
        (3, metered.contract_id, "dueDate", "after_contract_end"),
    ]


# -- keys ---------------------------------------------------------------------------------


def test_two_records_with_the_same_subscription_and_key_in_one_submission_fail_on_the_second(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client, contracts=2)
    first, second = metered.contract_ids
    records = [
        record(first, metered.component_id, 1, key="k"),
        record(first, metered.component_id, 1, key="k"),  # identical: still an error
        record(second, metered.component_id, 1, key="k"),  # another subscription: fine
        record(first, metered.component_id, 2, key="k"),
    ]
    task = run_bulk(client, metered, records)
    assert _errors(task) == [
        (1, first, "key", "duplicate_in_submission"),
        (3, first, "key", "duplicate_in_submission"),
    ]
    assert total_count(client, metered, first) == total_count(client, metered, second) == 0


# Records are written chunk by chunk while the rest are validated, trusting them to be
# valid and new (services.ingest.apply_submission); these submissions are long enough
# that some chunks are written before the record that breaks the trust is met.
_PAST_WRITTEN_CHUNKS = 2 * ingest._CHUNK + 500


def _stored(client: TestClient, metered: MeteredSeller) -> int:
    return sum(total_count(client, metered, contract) for contract in metered.contract_ids)


def test_a_bad_record_met_after_others_were_written_still_fails_the_submission_whole(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client, contracts=2)
    records = _keyed(metered, _PAST_WRITTEN_CHUNKS)
    last = len(records) - 1
    records[last] = {**records[last], "quantity": "1.0000001"}
    task = run_bulk(client, metered, records)
    assert _outcome(task) == ("Failed", len(records), 0, 0)
    assert _errors(task) == [
        (last, records[last]["subscriptionId"], "quantity", "too_many_decimals")
    ]
    assert _stored(client, metered) == 0


def test_a_stored_key_met_after_others_were_written_counts_as_a_duplicate(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client, contracts=2)
    records = _keyed(metered, _PAST_WRITTEN_CHUNKS)
    assert _outcome(run_bulk(client, metered, records[-1:])) == ("Successful", 1, 1, 0)
    task = run_bulk(client, metered, records)
    assert _outcome(task) == ("Successful", len(records), len(records) - 1, 1)
    assert _stored(client, metered) == len(records)


def test_a_key_repeated_far_apart_in_one_submission_fails_it(client: TestClient) -> None:
    metered = new_metered_seller(client, contracts=2)
    records = _keyed(metered, _PAST_WRITTEN_CHUNKS)
    last = len(records) - 1
    records[last] = {**records[10], "quantity": 7}
    task = run_bulk(client, metered, records)
    assert _errors(task) == [
        (last, records[10]["subscriptionId"], "key", "duplicate_in_submission")
    ]
    assert _stored(client, metered) == 0


def test_a_key_stored_earlier_with_different_values_is_an_error_key_reused(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    stored = record(metered.contract_id, metered.component_id, 2, key="k-1")
    assert _outcome(run_bulk(client, metered, [stored])) == ("Successful", 1, 1, 0)
    changes: list[dict[str, Any]] = [
        {"quantity": 3},
        {"dueDate": "2026-01-16T00:00:00Z"},
        {"description": "changed"},
        {"price": 1},
        {"productId": metered.component_ids[1]},
    ]
    for change in changes:
        task = run_bulk(client, metered, [{**stored, **change}])
        assert _errors(task) == [(0, metered.contract_id, "key", "key_reused")], change
    assert total_count(client, metered) == 1


def test_a_key_stored_by_the_contract_usage_api_counts_as_a_duplicate(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    posted = send(
        client, "POST", metered.usage_path(), metered, usage(metered.component_id, 5, Key="k-1")
    )
    assert posted.status_code == 201, posted.text
    same = record(metered.contract_id, metered.component_id, "5.0", key="k-1")
    task = run_bulk(client, metered, [same, {**same, "key": "k-2"}])
    assert _outcome(task) == ("Successful", 2, 1, 1)
    assert total_count(client, metered) == 2


def test_resubmitting_keyed_records_without_due_date_later_counts_them_as_duplicates(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    records = [
        {
            "subscriptionId": metered.contract_id,
            "productId": metered.component_id,
            "quantity": 1,
            "key": "k-1",
        }
    ]
    assert _outcome(run_bulk(client, metered, records)) == ("Successful", 1, 1, 0)
    moved = client.put("/admin/clock", json={"now": "2026-01-02T00:00:00Z"}, headers=ADMIN)
    assert moved.status_code == 200, moved.text
    # a client retrying the very same body a day later (e.g. after a lost answer)
    retried = run_bulk(client, metered, records)
    assert _outcome(retried) == ("Successful", 1, 0, 1), retried["errors"]
    assert total_count(client, metered) == 1


# -- Idempotency-Key ----------------------------------------------------------------------


def test_an_idempotency_key_replay_with_the_same_body_returns_the_first_task(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    body = {"consumptions": [record(metered.contract_id, metered.component_id, 1)]}  # no key
    first = send(client, "POST", metered.bulk_path, metered, body, **{"Idempotency-Key": "i-1"})
    assert first.status_code == 202, first.text
    wait_for_task(client, first.headers["Location"], metered.headers)
    again = send(client, "POST", metered.bulk_path, metered, body, **{"Idempotency-Key": "i-1"})
    assert again.status_code == 202, again.text
    assert again.json()["taskId"] == first.json()["taskId"]
    assert again.headers["Location"] == first.headers["Location"]
    assert again.json()["message"] == "Successful"
    assert total_count(client, metered) == 1  # applied once


def test_an_idempotency_key_reused_with_another_body_is_409(client: TestClient) -> None:
    metered = new_metered_seller(client)
    body = {"consumptions": [record(metered.contract_id, metered.component_id, 1)]}
    other = {"consumptions": [record(metered.contract_id, metered.component_id, 2)]}
    first = send(client, "POST", metered.bulk_path, metered, body, **{"Idempotency-Key": "i-1"})
    assert first.status_code == 202, first.text
    reused = send(client, "POST", metered.bulk_path, metered, other, **{"Idempotency-Key": "i-1"})
    problem(reused, 409)
    wait_for_task(client, first.headers["Location"], metered.headers)
    assert total_count(client, metered) == 1


def test_an_idempotency_key_belongs_to_one_seller(client: TestClient) -> None:
    alice = new_metered_seller(client, name="Alice")
    bob = new_metered_seller(client, name="Bob")
    tasks = []
    for metered in (alice, bob):
        body = {"consumptions": [record(metered.contract_id, metered.component_id, 1)]}
        response = send(
            client, "POST", metered.bulk_path, metered, body, **{"Idempotency-Key": "i"}
        )
        assert response.status_code == 202, response.text
        tasks.append(wait_for_task(client, response.headers["Location"], metered.headers))
    assert tasks[0]["taskId"] != tasks[1]["taskId"]
    assert [_outcome(task) for task in tasks] == [("Successful", 1, 1, 0)] * 2


# -- dry runs -----------------------------------------------------------------------------


def test_a_dry_run_answers_200_with_the_outcome_and_saves_nothing(client: TestClient) -> None:
    metered = new_metered_seller(client)
    valid = [record(metered.contract_id, metered.component_id, n, key=f"k-{n}") for n in range(3)]
    response = send(
        client, "POST", f"{metered.bulk_path}?dryRun=true", metered, {"consumptions": valid}
    )
    assert response.status_code == 200, response.text
    assert "Location" not in response.headers
    assert response.json() == {
        "taskId": None,
        "message": "Successful",
        "totalRecords": 3,
        "savedRecords": 3,
        "duplicateRecords": 0,
        "errors": [],
        "createdAt": None,
        "completedAt": None,
    }
    assert total_count(client, metered) == 0
    # what a dry run counts is what applying would do: once applied, the keys are duplicates
    run_bulk(client, metered, valid)
    again = send(
        client, "POST", f"{metered.bulk_path}?dryRun=true", metered, {"consumptions": valid}
    )
    assert _outcome(again.json()) == ("Successful", 3, 0, 3)
    assert total_count(client, metered) == 3


def test_a_dry_run_of_an_invalid_submission_names_every_error_and_saves_nothing(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    records = [
        record(metered.contract_id, metered.component_id, 1),
        record(metered.contract_id, metered.component_id, -1),
        record(UNKNOWN_ID, metered.component_id, 1),
    ]
    response = send(
        client, "POST", f"{metered.bulk_path}?dryRun=true", metered, {"consumptions": records}
    )
    assert response.status_code == 200, response.text
    task = response.json()
    assert _outcome(task) == ("Failed", 3, 0, 0)
    assert _errors(task) == [
        (1, metered.contract_id, "quantity", "negative"),
        (2, UNKNOWN_ID, "subscriptionId", "not_found"),
    ]
    assert total_count(client, metered) == 0


# -- limits and unreadable bodies ---------------------------------------------------------


def test_more_records_than_the_configured_limit_is_413(
    settings: Settings, database: Database, clock: TestClock
) -> None:
    with TestClient(_app_with(settings, database, clock, bulk_max_records=10)) as client:
        metered = new_metered_seller(client)
        records = [record(metered.contract_id, metered.component_id, n) for n in range(11)]
        for path in (metered.bulk_path, f"{metered.bulk_path}?dryRun=true"):
            problem(send(client, "POST", path, metered, {"consumptions": records}), 413)
        at_limit = run_bulk(client, metered, records[:10])
        assert _outcome(at_limit) == ("Successful", 10, 10, 0)


def test_a_body_over_the_bulk_byte_limit_is_413(
    settings: Settings, database: Database, clock: TestClock
) -> None:
    app = _app_with(settings, database, clock, bulk_max_bytes=2048, max_body_bytes=1024)
    with TestClient(app) as client:
        metered = new_metered_seller(client)
        records = [record(metered.contract_id, metered.component_id, n) for n in range(30)]
        problem(send(client, "POST", metered.bulk_path, metered, {"consumptions": records}), 413)
        # the bulk limit, not the general one, applies to bulk submissions
        assert _outcome(run_bulk(client, metered, records[:10])) == ("Successful", 10, 10, 0)
    assert 1024 < len(encode({"consumptions": records[:10]})) < 2048


def test_malformed_json_is_400(client: TestClient) -> None:
    metered = new_metered_seller(client)
    for body in ('{"consumptions": [', '{"consumptions": [NaN]}', "{'consumptions': []}", ""):
        for path in (metered.bulk_path, f"{metered.bulk_path}?dryRun=true"):
            response = send(client, "POST", path, metered, body)
            problem(response, 400)
            assert "Location" not in response.headers, body


def test_a_body_that_is_not_a_list_of_consumptions_is_422_at_once_without_a_task(
    client: TestClient, database: Database
) -> None:
    metered = new_metered_seller(client)
    bodies = [
        '{"consumptions": 5}',
        '{"consumptions": null}',
        '{"consumptions": {}}',
        "{}",
        "[]",
        "null",
        '"consumptions"',
        '{"consumptions": [], "sellerId": "x"}',
    ]
    for body in bodies:
        response = send(client, "POST", metered.bulk_path, metered, body)
        errors = problem(response, 422)["errors"]
        assert errors, body
        assert "Location" not in response.headers, body
    with database.read() as session:
        assert session.execute(select(func.count()).select_from(TaskRow)).scalar_one() == 0


# -- bad records --------------------------------------------------------------------------


def test_every_unreadable_or_invalid_record_is_named_and_nothing_is_saved(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    contract, product = metered.contract_id, metered.component_id

    def with_(**fields: str) -> str:
        """A record as raw JSON: the good record's fields, replaced by raw JSON `fields`."""
        good = {
            "subscriptionId": f'"{contract}"',
            "productId": f'"{product}"',
            "quantity": "1",
            "dueDate": '"2026-01-15T00:00:00Z"',
        }
        merged = {**good, **fields}
        return "{" + ", ".join(f'"{k}": {v}' for k, v in merged.items() if v) + "}"

    cases: list[tuple[str, set[tuple[str, str]]]] = [
        (with_(), set()),
        ("null", {("", "not_an_object")}),
        ("5", {("", "not_an_object")}),
        ('"record"', {("", "not_an_object")}),
        ("[]", {("", "not_an_object")}),
        (with_(subscriptionId="5"), {("subscriptionId", "not_a_string")}),
        (with_(productId="true"), {("productId", "not_a_string")}),
        (with_(quantity="true"), {("quantity", "not_a_decimal")}),
        (with_(quantity='"abc"'), {("quantity", "not_a_decimal")}),
        (with_(quantity='"NaN"'), {("quantity", "not_a_decimal")}),
        (with_(quantity='"-Infinity"'), {("quantity", "not_a_decimal")}),
        (with_(quantity="1e400"), {("quantity", "too_large")}),
        (with_(quantity="-1"), {("quantity", "negative")}),
        (with_(quantity="1.1234567"), {("quantity", "too_many_decimals")}),
        (with_(quantity=""), {("quantity", "required")}),
        (with_(quantity="null"), {("quantity", "required")}),
        (with_(), set()),
        (with_(dueDate='"yesterday"'), {("dueDate", "invalid_datetime")}),
        (with_(dueDate='"2026-02-30T00:00:00Z"'), {("dueDate", "invalid_datetime")}),
        (with_(dueDate="5"), {("dueDate", "invalid_datetime")}),
        (with_(colour='"red"'), {("colour", "unknown_field")}),
        (with_(price="-1"), {("price", "negative")}),
        (with_(price='"0.1234567"'), {("price", "too_many_decimals")}),
        (with_(key='"' + "k" * 201 + '"'), {("key", "too_long")}),
        (with_(key="7"), {("key", "not_a_string")}),
        (with_(description='"' + "d" * 1001 + '"'), {("description", "too_long")}),
        (with_(subscriptionId=f'"{UNKNOWN_ID}"'), {("subscriptionId", "not_found")}),
        (
            with_(quantity="-1", dueDate='"2025-01-01T00:00:00Z"'),
            {("quantity", "negative"), ("dueDate", "before_contract_start")},
        ),
        (with_(), set()),
    ]
    body = '{"consumptions": [' + ", ".join(raw for raw, _ in cases) + "]}"
    response = send(client, "POST", metered.bulk_path, metered, body)
    assert response.status_code == 202, response.text
    task = wait_for_task(client, response.headers["Location"], metered.headers)
    assert _outcome(task) == ("Failed", len(cases), 0, 0)
    named: dict[int, set[tuple[str, str]]] = {}
    for index, _subscription, field, code in _errors(task):
        assert index is not None
        named.setdefault(index, set()).add((field, code))
    assert named == {n: expected for n, (_, expected) in enumerate(cases) if expected}
    assert all(error["message"] for error in task["errors"])
    assert total_count(client, metered) == 0


def test_another_sellers_subscription_is_not_found_exactly_like_an_unknown_one(
    client: TestClient,
) -> None:
    alice = new_metered_seller(client, name="Alice")
    bob = new_metered_seller(client, name="Bob")
    records = [
        record(bob.contract_id, bob.component_id, 1),
        record(UNKNOWN_ID, bob.component_id, 1),
        record(alice.contract_id, bob.component_id, 1),  # Bob's product on Alice's contract
    ]
    task = run_bulk(client, alice, records)
    errors = task["errors"]
    assert _errors(task) == [
        (0, bob.contract_id, "subscriptionId", "not_found"),
        (1, UNKNOWN_ID, "subscriptionId", "not_found"),
        (2, alice.contract_id, "productId", "not_in_plan"),
    ]
    assert errors[0]["message"].replace(bob.contract_id, "?") == errors[1]["message"].replace(
        UNKNOWN_ID, "?"
    )
    assert total_count(client, bob) == 0
    assert total_count(client, alice) == 0


def test_a_record_missing_both_quantity_and_product_names_both(client: TestClient) -> None:
    metered = new_metered_seller(client)
    task = run_bulk(client, metered, [{"subscriptionId": metered.contract_id}])
    assert set(_errors(task)) == {
        (0, metered.contract_id, "quantity", "required"),
        (0, metered.contract_id, "productId", "required"),
    }


def test_a_nul_character_in_a_record_is_an_error_not_a_500(client: TestClient) -> None:
    metered = new_metered_seller(client)
    records = [record(f"{metered.contract_id}\x00", metered.component_id, 1)]
    response = send(
        client, "POST", f"{metered.bulk_path}?dryRun=true", metered, {"consumptions": records}
    )
    assert response.status_code == 200, response.text
    assert _errors(response.json()) == [
        (0, f"{metered.contract_id}\x00", "subscriptionId", "nul_character")
    ]


def test_a_nul_character_in_a_key_fails_the_task_and_never_breaks_the_listing(
    manual_client: TestClient, database: Database, clock: TestClock
) -> None:
    metered = new_metered_seller(manual_client)
    records = [record(metered.contract_id, metered.component_id, 1, key="vm\x0042")]
    location = submit_bulk(manual_client, metered, records)
    Worker(database, clock).run_until_idle()
    task = wait_for_task(manual_client, location, metered.headers, timeout=1)
    listed = manual_client.get(metered.usage_path(), headers=metered.headers)
    assert listed.status_code == 200, listed.text
    assert _errors(task) == [(0, metered.contract_id, "key", "nul_character")]


def test_a_due_date_the_contract_usage_api_refuses_is_an_error_in_bulk_too(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    far = "8500-01-01T00:00:00Z"
    posted = send(
        client, "POST", metered.usage_path(), metered, usage(metered.component_id, DueDate=far)
    )
    assert posted.status_code == 422, posted.text
    task = run_bulk(
        client, metered, [record(metered.contract_id, metered.component_id, dueDate=far)]
    )
    assert {(index, field) for index, _, field, _ in _errors(task)} == {(0, "dueDate")}


OUT_OF_RANGE_DUE_DATES = ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+05:00")
"""Valid ISO 8601 timestamps whose instant in UTC lies outside the years 1 to 9999."""


def test_a_due_date_outside_the_representable_years_in_utc_is_an_error_in_a_dry_run(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    records = [
        record(metered.contract_id, metered.component_id, dueDate=d) for d in OUT_OF_RANGE_DUE_DATES
    ]
    response = send(
        client, "POST", f"{metered.bulk_path}?dryRun=true", metered, {"consumptions": records}
    )
    assert response.status_code == 200, response.text
    assert {(index, field) for index, _, field, _ in _errors(response.json())} == {
        (0, "dueDate"),
        (1, "dueDate"),
    }


def test_a_due_date_outside_the_representable_years_in_utc_fails_the_task(
    manual_client: TestClient, database: Database, clock: TestClock
) -> None:
    metered = new_metered_seller(manual_client)
    records = [record(metered.contract_id, metered.component_id, dueDate=OUT_OF_RANGE_DUE_DATES[0])]
    location = submit_bulk(manual_client, metered, records)
    Worker(database, clock).run_until_idle()
    task = wait_for_task(manual_client, location, metered.headers, timeout=1)
    assert {(index, field) for index, _, field, _ in _errors(task)} == {(0, "dueDate")}


def test_quantities_up_to_the_bound_are_applied_exactly_and_the_bound_is_an_error(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    bound = Decimal(10) ** MAX_INTEGER_DIGITS
    largest = bound - Decimal("0.000001")
    refused = run_bulk(client, metered, [record(metered.contract_id, metered.component_id, bound)])
    assert _errors(refused) == [(0, metered.contract_id, "quantity", "too_large")]
    applied = run_bulk(
        client, metered, [record(metered.contract_id, metered.component_id, largest)]
    )
    assert _outcome(applied) == ("Successful", 1, 1, 0)
    listed = exact(client.get(metered.usage_path(), headers=metered.headers))
    assert [entry["Quantity"] for entry in listed] == [largest]


# -- tenancy ------------------------------------------------------------------------------


def test_a_key_of_another_seller_on_the_url_is_403(client: TestClient) -> None:
    alice = new_metered_seller(client, name="Alice")
    bob = new_metered_seller(client, name="Bob")
    location = submit_bulk(client, alice, [record(alice.contract_id, alice.component_id, 1)])
    body = {"consumptions": [record(alice.contract_id, alice.component_id, 1)]}
    for path in (alice.bulk_path, f"{alice.bulk_path}?dryRun=true"):
        problem(send(client, "POST", path, bob, body), 403)
    problem(client.get(location, headers=bob.headers), 403)
    wait_for_task(client, location, alice.headers)
    assert total_count(client, alice) == 1


def test_a_task_of_another_seller_is_404_like_an_unknown_task(client: TestClient) -> None:
    alice = new_metered_seller(client, name="Alice")
    bob = new_metered_seller(client, name="Bob")
    location = submit_bulk(client, alice, [record(alice.contract_id, alice.component_id, 1)])
    task_id = location.rsplit("/", 1)[1]
    foreign = client.get(f"{bob.bulk_path}/{task_id}", headers=bob.headers)
    unknown = client.get(f"{bob.bulk_path}/{UNKNOWN_ID}", headers=bob.headers)
    assert problem(foreign, 404)["title"] == problem(unknown, 404)["title"]


def test_a_submission_without_a_valid_key_is_401(client: TestClient) -> None:
    metered = new_metered_seller(client)
    body = {"consumptions": [record(metered.contract_id, metered.component_id, 1)]}
    problem(client.post(metered.bulk_path, json=body), 401)
    wrong = {"Authorization": "Bearer arr_wrong"}
    problem(client.post(metered.bulk_path, json=body, headers=wrong), 401)
    assert total_count(client, metered) == 0

"""SPEC §5: metered usage posted to a contract on the contract usage API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response

from arrears.domain.money import MAX_INTEGER_DIGITS
from tests.ingest_factories import (
    START,
    MeteredSeller,
    exact,
    new_metered_seller,
    problem,
    send,
    total_count,
    usage,
)

UNKNOWN_ID = "0" * 24


def _post(
    client: TestClient, metered: MeteredSeller, payload: object, contract_id: str | None = None
) -> Response:
    return send(client, "POST", metered.usage_path(contract_id), metered, payload)


def _created(client: TestClient, metered: MeteredSeller, payload: object) -> dict[str, Any]:
    response = _post(client, metered, payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = exact(response)
    return body


def _errors(response: Response) -> set[tuple[str, str]]:
    return {(e["field"], e["code"]) for e in problem(response, 422)["errors"]}


def _raw_usage(metered: MeteredSeller, quantity_literal: str) -> str:
    """A usage body whose Quantity is `quantity_literal`, exactly as written."""
    return (
        f'{{"DueDate": "2026-01-15T00:00:00Z", "ComponentId": "{metered.component_id}", '
        f'"Quantity": {quantity_literal}}}'
    )


# -- creating -----------------------------------------------------------------------------


def test_posting_usage_answers_201_with_every_field(client: TestClient) -> None:
    metered = new_metered_seller(client)
    payload = usage(
        metered.component_id, Decimal("12.5"), Key="vm-42/2026-01-15", Memo="eu-west backup"
    )
    body = _created(client, metered, payload)
    assert isinstance(body["Id"], str)
    assert body["Id"]
    assert body == {
        "Id": body["Id"],
        "ContractId": metered.contract_id,
        "TransferredAt": START,  # the test clock
        "ComponentId": metered.component_id,
        "Quantity": Decimal("12.5"),
        "Key": "vm-42/2026-01-15",
        "DueDate": "2026-01-15T00:00:00Z",
        "Memo": "eu-west backup",
        "ProductOverride": None,
        "InvoiceId": None,
    }
    listed = client.get(metered.usage_path(), headers=metered.headers)
    assert exact(listed) == [body]


EXACT_QUANTITIES = [
    (Decimal("12.5"), "12.5"),
    ("12.5", "12.5"),
    ("12.500000", "12.5"),
    (Decimal("0.000001"), "0.000001"),
    ("0.000001", "0.000001"),
    (0, "0"),
    (1000, "1000"),
    (Decimal("123456789.123456"), "123456789.123456"),
]


def test_quantity_is_stored_and_returned_exactly(client: TestClient) -> None:
    metered = new_metered_seller(client)
    for sent, stored in EXACT_QUANTITIES:
        body = _created(client, metered, usage(metered.component_id, sent))
        assert body["Quantity"] == Decimal(stored), sent
        fetched = client.get(metered.usage_path(), params={"take": 1}, headers=metered.headers)
        # the exact digits come back from storage, never a float's 12.499999...
        assert f'"Quantity":{stored},' in fetched.text, (sent, fetched.text)


def test_a_quantity_with_seven_decimal_places_is_422_too_many_decimals(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    for quantity in (Decimal("0.0000001"), "1.1234567"):
        response = _post(client, metered, usage(metered.component_id, quantity))
        assert _errors(response) == {("Quantity", "too_many_decimals")}
    assert total_count(client, metered) == 0


def test_quantities_up_to_the_bound_are_stored_exactly_and_the_bound_is_422(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    bound = Decimal(10) ** MAX_INTEGER_DIGITS
    largest = bound - Decimal("0.000001")  # on SQLite, just inside a 64-bit scaled integer
    assert _created(client, metered, usage(metered.component_id, largest))["Quantity"] == largest
    listed = exact(client.get(metered.usage_path(), headers=metered.headers))
    assert listed[0]["Quantity"] == largest
    response = _post(client, metered, usage(metered.component_id, bound))
    assert {field for field, _code in _errors(response)} == {"Quantity"}
    assert total_count(client, metered) == 1


# -- keys ---------------------------------------------------------------------------------


def test_a_replayed_key_with_identical_values_answers_200_with_the_stored_entry(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    payload = usage(metered.component_id, Decimal("2.5"), Key="k-1", Memo="first")
    first = _created(client, metered, payload)
    # identical values written differently: the quantity as a string, the date with an offset
    again = _post(
        client,
        metered,
        {**payload, "Quantity": "2.500", "DueDate": "2026-01-15T01:00:00+01:00"},
    )
    assert again.status_code == 200, again.text
    assert exact(again) == first
    assert total_count(client, metered) == 1


def test_the_same_key_with_different_values_is_409(client: TestClient) -> None:
    metered = new_metered_seller(client)
    payload = usage(metered.component_id, 2, Key="k-1")
    first = _created(client, metered, payload)
    changes: list[dict[str, Any]] = [
        {"Quantity": 3},
        {"DueDate": "2026-01-16T00:00:00Z"},
        {"Memo": "another memo"},
        {"ProductOverride": {"PricePerUnit": 1}},
    ]
    for change in changes:
        problem(_post(client, metered, {**payload, **change}), 409)
    assert exact(client.get(metered.usage_path(), headers=metered.headers)) == [first]


def test_the_same_key_on_another_contract_is_another_entry(client: TestClient) -> None:
    metered = new_metered_seller(client, contracts=2)
    payload = usage(metered.component_id, 2, Key="shared")
    first = _created(client, metered, payload)
    other = _post(client, metered, payload, metered.contract_ids[1])
    assert other.status_code == 201, other.text
    assert other.json()["Id"] != first["Id"]


def test_an_empty_key_is_no_key(client: TestClient) -> None:
    metered = new_metered_seller(client)
    payload = usage(metered.component_id, 2, Key="")
    first = _created(client, metered, payload)
    second = _created(client, metered, payload)
    assert first["Id"] != second["Id"]
    assert first["Key"] is None
    assert total_count(client, metered) == 2


def test_a_key_longer_than_two_hundred_characters_is_422(client: TestClient) -> None:
    metered = new_metered_seller(client)
    response = _post(client, metered, usage(metered.component_id, 1, Key="k" * 201))
    assert ("Key", "too_long") in _errors(response)


def test_a_key_with_a_nul_character_is_422(client: TestClient) -> None:
    metered = new_metered_seller(client)
    response = _post(client, metered, usage(metered.component_id, 1, Key="vm\x0042"))
    assert _errors(response) == {("Key", "nul_character")}


# -- due dates ----------------------------------------------------------------------------


def test_a_due_date_before_the_contract_start_is_422_before_contract_start(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    response = _post(client, metered, usage(metered.component_id, DueDate="2025-12-31T23:59:59Z"))
    assert _errors(response) == {("DueDate", "before_contract_start")}
    assert total_count(client, metered) == 0


def test_a_due_date_at_the_contract_start_is_accepted(client: TestClient) -> None:
    metered = new_metered_seller(client)
    assert _created(client, metered, usage(metered.component_id, DueDate=START))["DueDate"] == START


def test_a_due_date_after_the_contract_end_is_422_after_contract_end(client: TestClient) -> None:
    metered = new_metered_seller(client)
    ended = send(
        client,
        "POST",
        f"/api/v1/contracts/{metered.contract_id}/end",
        metered,
        {"EndDate": "2026-03-01T00:00:00Z"},
    )
    assert ended.status_code == 200, ended.text
    late = _post(client, metered, usage(metered.component_id, DueDate="2026-03-01T00:00:01Z"))
    assert _errors(late) == {("DueDate", "after_contract_end")}
    at_end = _post(client, metered, usage(metered.component_id, DueDate="2026-03-01T00:00:00Z"))
    assert at_end.status_code == 201, at_end.text
    assert total_count(client, metered) == 1


def test_usage_due_long_ago_but_within_the_contract_is_accepted_as_late_usage(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client, start_date="2020-01-01T00:00:00Z")
    body = _created(client, metered, usage(metered.component_id, DueDate="2020-03-01T00:00:00Z"))
    assert body["DueDate"] == "2020-03-01T00:00:00Z"
    assert body["TransferredAt"] == START


def test_a_due_date_without_an_offset_is_utc_and_answers_are_utc_with_z(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    for sent, stored in [
        ("2026-02-26T09:32:36", "2026-02-26T09:32:36Z"),
        ("2026-02-26T09:32:36.123Z", "2026-02-26T09:32:36.123000Z"),
        ("2026-02-26T11:32:36+02:00", "2026-02-26T09:32:36Z"),
        ("2026-02-26T04:32:36-05:00", "2026-02-26T09:32:36Z"),
    ]:
        body = _created(client, metered, usage(metered.component_id, DueDate=sent))
        assert body["DueDate"] == stored, sent


def test_a_due_date_outside_the_representable_years_in_utc_is_422(client: TestClient) -> None:
    metered = new_metered_seller(client)
    for due_date in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+05:00"):
        response = _post(client, metered, usage(metered.component_id, DueDate=due_date))
        assert {field for field, _code in _errors(response)} == {"DueDate"}, due_date


# -- components ---------------------------------------------------------------------------


def test_a_component_not_metered_by_the_plan_variant_is_422_not_in_plan(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    other = new_metered_seller(client, name="Other")
    for component_id in (metered.unmetered_component_id, other.component_id, UNKNOWN_ID):
        response = _post(client, metered, usage(component_id))
        assert _errors(response) == {("ComponentId", "not_in_plan")}
    assert total_count(client, metered) == 0


def test_every_broken_usage_rule_is_named_at_once(client: TestClient) -> None:
    metered = new_metered_seller(client)
    payload = usage(metered.unmetered_component_id, DueDate="2025-06-01T00:00:00Z")
    assert _errors(_post(client, metered, payload)) == {
        ("ComponentId", "not_in_plan"),
        ("DueDate", "before_contract_start"),
    }


# -- contracts ----------------------------------------------------------------------------


def test_usage_of_an_unknown_or_foreign_contract_is_404(client: TestClient) -> None:
    metered = new_metered_seller(client)
    foreign = new_metered_seller(client, name="Other")
    for contract_id in (UNKNOWN_ID, foreign.contract_id):
        posted = _post(client, metered, usage(metered.component_id), contract_id)
        problem(posted, 404)
        listed = client.get(metered.usage_path(contract_id), headers=metered.headers)
        problem(listed, 404)
    # the foreign contract's seller sees nothing of the attempt
    assert total_count(client, foreign) == 0


# -- quantities that are not decimals -----------------------------------------------------


def test_nan_and_infinity_literals_are_400(client: TestClient) -> None:
    metered = new_metered_seller(client)
    for literal in ("NaN", "Infinity", "-Infinity"):
        problem(_post(client, metered, _raw_usage(metered, literal)), 400)


def test_a_quantity_that_is_not_a_finite_decimal_of_at_least_zero_is_422_naming_quantity(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    literals = ['"NaN"', '"Infinity"', "1e400", "-1", '"-0.5"', "true", '"abc"', '""', "null"]
    for literal in [*literals, "[1]", "{}"]:
        response = _post(client, metered, _raw_usage(metered, literal))
        assert {field for field, _code in _errors(response)} == {"Quantity"}, literal
    assert total_count(client, metered) == 0


def test_unknown_and_missing_fields_are_422_each_named(client: TestClient) -> None:
    metered = new_metered_seller(client)
    response = _post(client, metered, {"ComponentId": metered.component_id, "Colour": "red"})
    assert _errors(response) == {
        ("DueDate", "required"),
        ("Quantity", "required"),
        ("Colour", "unknown_field"),
    }


# -- product override ---------------------------------------------------------------------


def test_a_product_override_is_stored_and_echoed(client: TestClient) -> None:
    metered = new_metered_seller(client)
    override = {"PricePerUnit": Decimal("99.123456"), "Name": "Migration", "Description": "once"}
    body = _created(client, metered, usage(metered.component_id, ProductOverride=override))
    assert body["ProductOverride"] == override
    listed = exact(client.get(metered.usage_path(), headers=metered.headers))
    assert listed[0]["ProductOverride"] == override


def test_a_product_override_price_with_too_many_decimals_or_below_zero_is_422(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    for price in (Decimal("0.0000001"), -1):
        payload = usage(metered.component_id, ProductOverride={"PricePerUnit": price})
        fields = {field for field, _code in _errors(_post(client, metered, payload))}
        assert fields == {"ProductOverride.PricePerUnit"}


# -- listing ------------------------------------------------------------------------------


def test_listing_usage_filters_by_due_date_window_and_billed_with_total_count(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    dates = ["2026-01-05T00:00:00Z", "2026-01-15T00:00:00Z", "2026-02-01T00:00:00Z"]
    ids = [_created(client, metered, usage(metered.component_id, DueDate=d))["Id"] for d in dates]

    def listed(**params: str) -> tuple[list[str], int]:
        response = client.get(metered.usage_path(), params=params, headers=metered.headers)
        assert response.status_code == 200, response.text
        return [e["Id"] for e in response.json()], int(response.headers["X-Total-Count"])

    assert listed() == (ids[::-1], 3)  # latest due date first
    assert listed(**{"from": "2026-01-10T00:00:00Z"}) == ([ids[2], ids[1]], 2)
    # `to` is exclusive: the entry due at 2026-02-01 is outside
    assert listed(**{"from": "2026-01-05T00:00:00Z", "to": "2026-02-01T00:00:00Z"}) == (
        [ids[1], ids[0]],
        2,
    )
    assert listed(billed="false") == (ids[::-1], 3)
    assert listed(billed="true") == ([], 0)  # nothing is billed yet
    assert listed(take="1", skip="1") == ([ids[1]], 3)


# -- deleting -----------------------------------------------------------------------------


def test_deleting_an_unbilled_entry_answers_204_and_it_is_gone(client: TestClient) -> None:
    metered = new_metered_seller(client)
    kept = _created(client, metered, usage(metered.component_id, 1))
    deleted = _created(client, metered, usage(metered.component_id, 2))
    response = client.delete(f"{metered.usage_path()}/{deleted['Id']}", headers=metered.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert exact(client.get(metered.usage_path(), headers=metered.headers)) == [kept]
    again = client.delete(f"{metered.usage_path()}/{deleted['Id']}", headers=metered.headers)
    problem(again, 404)


def test_deleting_an_unknown_malformed_or_foreign_entry_is_404(client: TestClient) -> None:
    metered = new_metered_seller(client, contracts=2)
    foreign = new_metered_seller(client, name="Other")
    entry = _created(client, metered, usage(metered.component_id))["Id"]
    foreign_entry = _created(client, foreign, usage(foreign.component_id))["Id"]
    attempts = [
        (metered.contract_id, "999999"),
        (metered.contract_id, "abc"),
        (metered.contract_id, "-1"),
        (metered.contract_id, "1e3"),
        (metered.contract_id, "9" * 30),
        (metered.contract_ids[1], entry),  # an entry of another contract
        (foreign.contract_id, foreign_entry),  # another seller's entry
        (metered.contract_id, foreign_entry),
        (UNKNOWN_ID, entry),
    ]
    for contract_id, usage_id in attempts:
        response = client.delete(
            f"{metered.usage_path(contract_id)}/{usage_id}", headers=metered.headers
        )
        problem(response, 404)
    assert total_count(client, metered) == 1
    assert total_count(client, foreign) == 1

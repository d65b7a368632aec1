"""SPEC §2, §5, §6: one decimal grammar, one timestamp grammar, repeated keys, nesting,
every error at once, on every surface (issue 15). Each test sends the input that the
issue found accepted, hidden or answered 500, exactly as it was sent."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from tests.factories import new_component, new_plan, new_plan_variant, new_seller
from tests.ingest_factories import (
    MeteredSeller,
    encode,
    exact,
    new_metered_seller,
    problem,
    record,
    run_bulk,
    send,
    total_count,
    usage,
    wait_for_task,
)

UNKNOWN_ID = "0" * 24
FIVE_THOUSAND_AND_ONE_DIGITS = "1" * 5_001


def _errors(response: Response) -> set[tuple[str, str]]:
    return {(e["field"], e["code"]) for e in problem(response, 422)["errors"]}


def _dry_run(client: TestClient, metered: MeteredSeller, body: str | bytes) -> dict[str, Any]:
    response = send(client, "POST", metered.bulk_path + "?dryRun=true", metered, body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _record_errors(result: dict[str, Any]) -> set[tuple[int, str, str]]:
    return {(e["index"], e["field"], e["code"]) for e in result["errors"]}


def _raw_usage(metered: MeteredSeller, quantity_json: str, due_date: str = "2026-01-15") -> str:
    return (
        f'{{"DueDate": "{due_date}T00:00:00Z", "ComponentId": "{metered.component_id}", '
        f'"Quantity": {quantity_json}}}'
    )


def _raw_record(metered: MeteredSeller, quantity_json: str) -> str:
    return (
        f'{{"consumptions": [{{"subscriptionId": "{metered.contract_id}", '
        f'"productId": "{metered.component_id}", "quantity": {quantity_json}, '
        '"dueDate": "2026-01-15T00:00:00Z"}]}'
    )


# -- one decimal grammar -------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1_000", "\u0661\u0662", " 12", "12 ", "NaN", "Infinity"])
def test_a_quantity_string_outside_the_decimal_grammar_is_refused_on_the_usage_api(
    client: TestClient, text: str
) -> None:
    metered = new_metered_seller(client)
    response = send(
        client, "POST", metered.usage_path(), metered, usage(metered.component_id, text)
    )
    assert _errors(response) == {("Quantity", "not_a_decimal")}
    assert total_count(client, metered) == 0


@pytest.mark.parametrize("text", ["1_000", "\u0661\u0662", " 12", "NaN", "-Infinity"])
def test_a_quantity_string_outside_the_decimal_grammar_is_refused_in_a_bulk_record(
    client: TestClient, text: str
) -> None:
    metered = new_metered_seller(client)
    body = {"consumptions": [record(metered.contract_id, metered.component_id, text)]}
    result = _dry_run(client, metered, send_body(body))
    assert _record_errors(result) == {(0, "quantity", "not_a_decimal")}


def test_a_quantity_string_outside_the_decimal_grammar_is_refused_by_the_older_put(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    body = {
        "subscriptionId": metered.contract_id,
        "consumptions": [{"productId": metered.component_id, "quantity": "1_000"}],
    }
    response = send(client, "PUT", metered.consumptions_path, metered, body)
    assert _errors(response) == {("consumptions[0].quantity", "not_a_decimal")}


def test_catalog_decimals_take_strings_of_the_decimal_grammar(client: TestClient) -> None:
    seller = new_seller(client)
    component = new_component(client, seller)
    plan = new_plan(client, seller)
    response = _post_variant(
        client,
        seller,
        plan["Id"],
        component["Id"],
        pricing={
            "Model": "Graduated",
            "Tiers": [
                {"UpTo": "1000", "PricePerUnit": "0.10"},
                {"UpTo": None, "PricePerUnit": "0.05"},
            ],
        },
        RecurringFee="9.99",
        TaxRate="19.5",
        free_quota="5",
    )
    assert response.status_code == 201, response.text
    variant = exact(response)
    assert str(variant["RecurringFee"]) == "9.99"
    assert str(variant["TaxRate"]) == "19.5"
    metered = variant["MeteredComponents"][0]
    assert str(metered["FreeQuota"]) == "5"
    assert [str(t["PricePerUnit"]) for t in metered["Pricing"]["Tiers"]] == ["0.1", "0.05"]


def test_package_pricing_and_a_customer_tax_rate_take_strings(client: TestClient) -> None:
    seller = new_seller(client)
    component = new_component(client, seller)
    variant = new_plan_variant(
        client,
        seller,
        new_plan(client, seller)["Id"],
        MeteredComponents=[
            {
                "ComponentId": component["Id"],
                "Pricing": {"Model": "Package", "PackageSize": "100", "PricePerPackage": "5.00"},
            }
        ],
    )
    assert variant["MeteredComponents"][0]["Pricing"]["PackageSize"] == 100
    response = client.post(
        "/api/v1/customers", json={"CompanyName": "Tax", "TaxRate": "7"}, headers=seller.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["TaxRate"] == 7


def test_a_price_string_outside_the_grammar_is_refused_in_the_catalog(client: TestClient) -> None:
    seller = new_seller(client)
    component = new_component(client, seller)
    plan = new_plan(client, seller)
    response = _post_variant(
        client,
        seller,
        plan["Id"],
        component["Id"],
        pricing={"Model": "PerUnit", "PricePerUnit": "\u0661"},
        RecurringFee="1_000",
    )
    assert _errors(response) == {
        ("RecurringFee", "not_a_decimal"),
        ("MeteredComponents[0].Pricing.PricePerUnit", "not_a_decimal"),
    }


def test_a_quantity_of_five_thousand_and_one_digits_is_422_on_the_field(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    as_number = _post_raw(client, metered, _raw_usage(metered, FIVE_THOUSAND_AND_ONE_DIGITS))
    as_string = _post_raw(client, metered, _raw_usage(metered, f'"{FIVE_THOUSAND_AND_ONE_DIGITS}"'))
    assert _errors(as_number) == {("Quantity", "too_large")}
    assert _errors(as_string) == {("Quantity", "too_large")}


def test_a_bulk_quantity_of_five_thousand_and_one_digits_is_a_record_error(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    result = _dry_run(client, metered, _raw_record(metered, FIVE_THOUSAND_AND_ONE_DIGITS))
    assert _record_errors(result) == {(0, "quantity", "too_large")}


# -- one timestamp grammar -----------------------------------------------------------------


def test_a_due_date_with_seconds_in_its_offset_is_refused_on_the_usage_api(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    body = usage(metered.component_id, DueDate="2026-01-20T00:00:00+05:30:99")
    response = send(client, "POST", metered.usage_path(), metered, body)
    assert _errors(response) == {("DueDate", "invalid_datetime")}


def test_a_due_date_with_seconds_in_its_offset_is_refused_in_a_bulk_record(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    rec = record(metered.contract_id, metered.component_id, dueDate="2026-01-20T00:00:00+05:30:99")
    result = _dry_run(client, metered, send_body({"consumptions": [rec]}))
    assert _record_errors(result) == {(0, "dueDate", "invalid_datetime")}


def test_an_offset_in_hours_and_minutes_is_converted_to_utc(client: TestClient) -> None:
    metered = new_metered_seller(client)
    body = usage(metered.component_id, DueDate="2026-01-20T00:00:00+05:30")
    response = send(client, "POST", metered.usage_path(), metered, body)
    assert response.status_code == 201, response.text
    assert response.json()["DueDate"] == "2026-01-19T18:30:00Z"


def test_one_bad_timestamp_has_one_code_on_both_surfaces(client: TestClient) -> None:
    metered = new_metered_seller(client)
    response = send(
        client, "POST", metered.usage_path(), metered, usage(metered.component_id, DueDate="nope")
    )
    rec = record(metered.contract_id, metered.component_id, dueDate="nope")
    result = _dry_run(client, metered, send_body({"consumptions": [rec]}))
    assert _errors(response) == {("DueDate", "invalid_datetime")}
    assert _record_errors(result) == {(0, "dueDate", "invalid_datetime")}


# -- repeated keys -------------------------------------------------------------------------


def test_a_usage_body_with_two_quantity_keys_is_422_naming_the_key(client: TestClient) -> None:
    metered = new_metered_seller(client)
    body = (
        f'{{"DueDate": "2026-01-15T00:00:00Z", "ComponentId": "{metered.component_id}", '
        '"Quantity": 1, "Quantity": 1000}'
    )
    response = _post_raw(client, metered, body)
    assert _errors(response) == {("Quantity", "duplicate_key")}
    assert total_count(client, metered) == 0


def test_a_repeated_key_is_named_together_with_the_bodys_other_faults(client: TestClient) -> None:
    metered = new_metered_seller(client)
    body = (
        f'{{"DueDate": "nope", "ComponentId": "{metered.component_id}", '
        '"Quantity": 1, "Quantity": 2}'
    )
    response = _post_raw(client, metered, body)
    assert _errors(response) == {("Quantity", "duplicate_key"), ("DueDate", "invalid_datetime")}


def test_a_bulk_record_with_two_quantity_keys_is_a_record_error_and_nothing_is_saved(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    body = (
        f'{{"consumptions": [{{"subscriptionId": "{metered.contract_id}", '
        f'"productId": "{metered.component_id}", "quantity": 1, "quantity": 1000}}]}}'
    )
    response = send(client, "POST", metered.bulk_path, metered, body)
    assert response.status_code == 202, response.text
    task = wait_for_task(client, response.headers["Location"], metered.headers)
    assert task["message"] == "Failed"
    assert _record_errors(task) == {(0, "quantity", "duplicate_key")}
    assert total_count(client, metered) == 0


# -- nesting -------------------------------------------------------------------------------

ONE_HUNDRED_THOUSAND = 100_000


@pytest.mark.parametrize("query", ["", "?dryRun=true"])
def test_a_bulk_body_of_one_hundred_thousand_nested_arrays_is_400(
    client: TestClient, query: str
) -> None:
    metered = new_metered_seller(client)
    nested = "[" * ONE_HUNDRED_THOUSAND + "]" * ONE_HUNDRED_THOUSAND
    response = send(
        client, "POST", metered.bulk_path + query, metered, f'{{"consumptions": [{nested}]}}'
    )
    assert problem(response, 400)["errors"][0]["code"] == "too_deep"


@pytest.mark.parametrize("query", ["", "?dryRun=true"])
def test_a_bulk_record_nested_one_hundred_thousand_deep_is_400(
    client: TestClient, query: str
) -> None:
    metered = new_metered_seller(client)
    deep = '{"a": ' * ONE_HUNDRED_THOUSAND + "1" + "}" * ONE_HUNDRED_THOUSAND
    body = f'{{"consumptions": [{{"subscriptionId": "x", "quantity": {deep}}}]}}'
    response = send(client, "POST", metered.bulk_path + query, metered, body)
    assert problem(response, 400)["errors"][0]["code"] == "too_deep"


def test_a_quantity_of_forty_nested_lists_is_a_record_error(client: TestClient) -> None:
    metered = new_metered_seller(client)
    result = _dry_run(client, metered, _raw_record(metered, "[" * 40 + "]" * 40))
    assert _record_errors(result) == {(0, "quantity", "not_a_decimal")}


# -- every error at once -------------------------------------------------------------------


def test_a_negative_quantity_is_named_with_the_other_faults_of_a_usage_body(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    body = {"ComponentId": "", "Quantity": -1, "DueDate": "nope", "Colour": 1}
    response = send(client, "POST", metered.usage_path(), metered, body)
    assert _errors(response) == {
        ("ComponentId", "too_short"),
        ("Quantity", "negative"),
        ("DueDate", "invalid_datetime"),
        ("Colour", "unknown_field"),
    }


def test_an_unknown_field_does_not_hide_a_due_date_before_the_contract(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    body = usage(metered.component_id, DueDate="2025-06-01T00:00:00Z", Colour="red")
    response = send(client, "POST", metered.usage_path(), metered, body)
    assert _errors(response) == {
        ("Colour", "unknown_field"),
        ("DueDate", "before_contract_start"),
    }


def test_a_bulk_record_names_an_unknown_item_code_and_a_negative_quantity(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    rec = {"subscriptionId": metered.contract_id, "itemCode": "NO-SUCH", "quantity": -1}
    result = _dry_run(client, metered, send_body({"consumptions": [rec]}))
    assert _record_errors(result) == {(0, "itemCode", "not_found"), (0, "quantity", "negative")}


def test_seven_decimals_are_named_with_an_unknown_subscription(client: TestClient) -> None:
    metered = new_metered_seller(client)
    rec = record(UNKNOWN_ID, metered.component_id, "1.1234567")
    result = _dry_run(client, metered, send_body({"consumptions": [rec]}))
    assert _record_errors(result) == {
        (0, "subscriptionId", "not_found"),
        (0, "quantity", "too_many_decimals"),
    }


def test_the_email_error_does_not_show_a_regular_expression(client: TestClient) -> None:
    seller = new_seller(client)
    response = client.post(
        "/api/v1/customers", json={"EmailAddress": "not an address"}, headers=seller.headers
    )
    [error] = problem(response, 422)["errors"]
    assert (error["field"], error["code"]) == ("EmailAddress", "invalid_format")
    assert "^" not in error["message"]
    assert "[" not in error["message"]


# -- a client leaving mid-body ---------------------------------------------------------------


def test_a_client_that_disconnects_mid_upload_is_logged_at_info_without_a_traceback(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    metered = new_metered_seller(client)
    messages = iter(
        [
            {"type": "http.request", "body": b'{"consumptions": [', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send_message(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(k.lower().encode(), v.encode()) for k, v in metered.headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": metered.bulk_path,
        "raw_path": metered.bulk_path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    with caplog.at_level(logging.INFO):
        asyncio.run(client.app(scope, receive, send_message))  # type: ignore[arg-type]
    disconnects = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert [r.levelno for r in disconnects] == [logging.INFO]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# -- helpers ---------------------------------------------------------------------------------


def send_body(payload: object) -> bytes:
    return encode(payload)


def _post_raw(client: TestClient, metered: MeteredSeller, body: str) -> Response:
    return send(client, "POST", metered.usage_path(), metered, body)


def test_the_older_put_names_seven_decimals_with_an_unknown_subscription(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    body = {
        "subscriptionId": UNKNOWN_ID,
        "consumptions": [{"productId": metered.component_id, "quantity": "1.1234567"}],
    }
    response = send(client, "PUT", metered.consumptions_path, metered, body)
    assert _errors(response) == {
        ("subscriptionId", "not_found"),
        ("consumptions[0].quantity", "too_many_decimals"),
    }


@pytest.mark.parametrize(
    "repeat",
    [
        '"quantity": 1, "quantity": 1000',
        '"quantity": 1, "quantity" : 1000',
        '"quantity": 1, "q\\u0075antity": 1000',
        '"quantity": 1, "price": null, "price": 2',
    ],
)
def test_a_repeated_key_in_a_bulk_record_is_found_however_it_is_written(
    client: TestClient, repeat: str
) -> None:
    metered = new_metered_seller(client)
    body = (
        f'{{"consumptions": [{{"subscriptionId": "{metered.contract_id}", '
        f'"productId": "{metered.component_id}", {repeat}}}]}}'
    )
    result = _dry_run(client, metered, body)
    assert {code for _, _, code in _record_errors(result)} == {"duplicate_key"}


@pytest.mark.parametrize(
    ("due_date", "stored"),
    [
        ("2026-01-20T00:00:00+05:30", "2026-01-19T18:30:00Z"),
        ("2026-01-20T00:00:00.1234567Z", "2026-01-20T00:00:00.123456Z"),
        ("2026-01-20", "2026-01-20T00:00:00Z"),
    ],
)
def test_a_bulk_due_date_of_the_grammar_is_stored_as_the_usage_api_stores_it(
    client: TestClient, due_date: str, stored: str
) -> None:
    metered = new_metered_seller(client)
    posted = send(
        client, "POST", metered.usage_path(), metered, usage(metered.component_id, DueDate=due_date)
    )
    assert posted.status_code == 201, posted.text
    task = run_bulk(
        client, metered, [record(metered.contract_id, metered.component_id, dueDate=due_date)]
    )
    assert task["message"] == "Successful", task
    listed = client.get(metered.usage_path(), headers=metered.headers).json()
    assert [entry["DueDate"] for entry in listed] == [stored, stored]


def _post_variant(
    client: TestClient,
    seller: Any,
    plan_id: str,
    component_id: str,
    *,
    pricing: dict[str, Any],
    free_quota: str | None = None,
    **fields: Any,
) -> Response:
    """POST a monthly EUR plan variant metering `component_id` at `pricing`, with the
    variant's other `fields` as sent."""
    metered: dict[str, Any] = {"ComponentId": component_id, "Pricing": pricing}
    if free_quota is not None:
        metered["FreeQuota"] = free_quota
    body = {
        "PlanId": plan_id,
        "Name": "Strings",
        "Currency": "EUR",
        "BillingPeriod": {"Unit": "Month", "Quantity": 1},
        "MeteredComponents": [metered],
        **fields,
    }
    return client.post("/api/v1/planvariants", json=body, headers=seller.headers)

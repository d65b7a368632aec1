"""Derived keys and consumption files: what `arrears submit` reads and writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from arrears.client import ConsumptionRecord, derived_key
from arrears.client._files import FileError, parse_map, read_source, write_errors


def _record(**fields: str) -> ConsumptionRecord:
    values = {
        "subscription_id": "c1",
        "item_code": "storage-gb",
        "quantity": "12.5",
        "due_date": "2026-11-01T00:00:00Z",
        **fields,
    }
    return ConsumptionRecord(**values)  # type: ignore[arg-type]


def test_a_derived_key_ignores_how_numbers_and_instants_are_written() -> None:
    key = derived_key(_record())
    assert key.startswith("auto-")
    assert len(key) == 45
    assert derived_key(_record(quantity="12.500")) == key
    assert derived_key(_record(due_date="2026-11-01T01:00:00+01:00")) == key
    assert derived_key(_record(due_date="2026-11-01T00:00:00")) == key  # no offset: UTC


def test_a_derived_key_changes_with_any_value() -> None:
    key = derived_key(_record())
    others = [
        _record(quantity="12.6"),
        _record(subscription_id="c2"),
        _record(item_code="egress-gb"),
        _record(due_date="2026-11-02T00:00:00Z"),
        _record(description="vm-41"),
        _record(price="1"),
    ]
    assert len({key, *(derived_key(r) for r in others)}) == 7


def test_map_options_name_the_columns_of_fields() -> None:
    assert parse_map(["quantity=qty,subscriptionId=contract", "dueDate=day"]) == {
        "quantity": "qty",
        "subscriptionId": "contract",
        "dueDate": "day",
    }
    with pytest.raises(FileError):
        parse_map(["qty"])
    with pytest.raises(FileError):
        parse_map(["amount=qty"])


def test_csv_rows_keep_their_text_and_rows_lacking_fields_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    path.write_text(
        "contract,sku,qty,dueDate,key,error,note\n"
        "c1,storage-gb,0.1000000,2026-11-01T00:00:00Z,k1,old message,x\n"
        "c1,,1,2026-11-01T00:00:00Z,k2,,\n"
        "c1,storage-gb,2,,,,\n"
    )
    source = read_source(path, {"subscriptionId": "contract", "itemCode": "sku", "quantity": "qty"})
    assert source.columns == ["contract", "sku", "qty", "dueDate", "key", "note"]
    assert source.ignored_columns == ["note"]
    first, second, third = source.rows
    assert first.record == ConsumptionRecord(
        subscription_id="c1",
        item_code="storage-gb",
        quantity="0.1000000",
        due_date="2026-11-01T00:00:00Z",
        key="k1",
    )
    assert (second.record, second.problem) == (None, "missing productId or itemCode")
    assert (third.record, third.problem) == (None, "a record without a key needs a dueDate")

    write_errors(path, source.columns, [(second, "missing productId or itemCode")])
    assert (tmp_path / "usage.csv.errors.csv").read_text() == (
        "contract,sku,qty,dueDate,key,note,error\n"
        "c1,,1,2026-11-01T00:00:00Z,k2,,missing productId or itemCode\n"
    )


def test_json_numbers_are_read_as_their_exact_text(tmp_path: Path) -> None:
    path = tmp_path / "usage.ndjson"
    path.write_text(
        '{"subscriptionId": "c1", "productId": "p1", "quantity": 0.1000000, "key": "k",'
        ' "price": 1e-7}\n\n'
    )
    (row,) = read_source(path).rows
    assert row.record is not None
    assert row.record.quantity == "0.1000000"
    assert row.record.price == "1E-7"

"""Consumption files: CSV, JSON and NDJSON in, `FILE.errors.csv` out.

Values are read as text and stay text (numbers of JSON files as their exact decimal
text), so a quantity reaches the server exactly as the file wrote it.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from arrears.client._records import ConsumptionRecord

__all__ = [
    "ERROR_COLUMN",
    "FIELDS",
    "FileError",
    "SourceFile",
    "SourceRow",
    "errors_path",
    "parse_map",
    "read_source",
    "write_errors",
]

FIELDS = (
    "subscriptionId",
    "productId",
    "itemCode",
    "quantity",
    "dueDate",
    "key",
    "description",
    "price",
)
ERROR_COLUMN = "error"
"""The column `FILE.errors.csv` adds; ignored when such a file is submitted again."""

SUFFIXES = (".csv", ".json", ".ndjson", ".jsonl")

_json_decoder = msgspec.json.Decoder(float_hook=Decimal)


class FileError(Exception):
    """The file cannot be read as consumption records at all."""


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One row of a file: its line (CSV, NDJSON) or position (JSON, 1-based), its values
    by column, and the record it stands for, or why it stands for none."""

    line: int
    values: Mapping[str, str]
    record: ConsumptionRecord | None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: Path
    columns: Sequence[str]
    rows: Sequence[SourceRow]
    ignored_columns: Sequence[str] = ()


def parse_map(options: Iterable[str]) -> dict[str, str]:
    """`--map field=column` options (also comma-separated) as {field: column}."""
    mapping: dict[str, str] = {}
    for option in options:
        for item in option.split(","):
            if not item.strip():
                continue
            field, sep, column = item.partition("=")
            field, column = field.strip(), column.strip()
            if not sep or not column:
                raise FileError(f"--map {item!r}: write field=column, e.g. quantity=qty")
            if field not in FIELDS:
                raise FileError(f"--map {item!r}: {field!r} is none of {', '.join(FIELDS)}")
            mapping[field] = column
    return mapping


def errors_path(path: Path) -> Path:
    return path.with_name(path.name + ".errors.csv")


def read_source(path: Path, mapping: Mapping[str, str] | None = None) -> SourceFile:
    """Read a `.csv`, `.json` (an array, or `{"consumptions": [...]}`) or `.ndjson`/
    `.jsonl` file. `mapping` names the column of a field where it is not the field's
    own name."""
    columns_of = {field: (mapping or {}).get(field, field) for field in FIELDS}
    suffix = path.suffix.lower()
    if suffix == ".csv":
        columns, raw_rows = _read_csv(path)
    elif suffix in (".ndjson", ".jsonl"):
        columns, raw_rows = _read_ndjson(path)
    elif suffix == ".json":
        columns, raw_rows = _read_json(path)
    else:
        raise FileError(f"{path}: not a .csv, .json, .ndjson or .jsonl file")
    known = set(columns_of.values()) | {ERROR_COLUMN}
    rows = [_row(line, values, columns_of) for line, values in raw_rows]
    data_columns = [c for c in columns if c != ERROR_COLUMN]
    return SourceFile(path, data_columns, rows, [c for c in data_columns if c not in known])


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        columns = list(reader.fieldnames or [])
        if not columns:
            raise FileError(f"{path}: no header row")
        rows = []
        for values in reader:
            if not any((v or "").strip() for v in values.values() if isinstance(v, str)):
                continue  # blank line
            if None in values:
                raise FileError(f"{path}:{reader.line_num}: more values than columns")
            rows.append((reader.line_num, {k: (v or "") for k, v in values.items()}))
    return columns, rows


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int | str):
        return str(value)
    raise ValueError(f"not a text or a number: {value!r}")


def _json_rows(
    path: Path, items: Iterable[tuple[int, Any]]
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    columns: dict[str, None] = {}
    rows = []
    for line, item in items:
        if not isinstance(item, dict):
            raise FileError(f"{path}:{line}: a record must be a JSON object")
        try:
            values = {str(k): _text(v) for k, v in item.items()}
        except ValueError as error:
            raise FileError(f"{path}:{line}: {error}") from None
        columns.update(dict.fromkeys(values))
        rows.append((line, values))
    return list(columns), rows


def _read_ndjson(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    items = []
    with path.open("rb") as stream:
        for number, line in enumerate(stream, 1):
            if line.strip():
                try:
                    items.append((number, _json_decoder.decode(line)))
                except msgspec.DecodeError as error:
                    raise FileError(f"{path}:{number}: {error}") from None
    return _json_rows(path, items)


def _read_json(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        document = _json_decoder.decode(path.read_bytes())
    except msgspec.DecodeError as error:
        raise FileError(f"{path}: {error}") from None
    if isinstance(document, dict) and isinstance(document.get("consumptions"), list):
        document = document["consumptions"]
    if not isinstance(document, list):
        raise FileError(f'{path}: expected an array or {{"consumptions": [...]}}')
    return _json_rows(path, enumerate(document, 1))


def _row(line: int, values: dict[str, str], columns_of: Mapping[str, str]) -> SourceRow:
    field = {name: values.get(column, "").strip() for name, column in columns_of.items()}
    missing = [name for name in ("subscriptionId", "quantity") if not field[name]]
    if not field["productId"] and not field["itemCode"]:
        missing.append("productId or itemCode")
    if missing:
        return SourceRow(line, values, None, f"missing {', '.join(missing)}")
    if not field["key"] and not field["dueDate"]:
        # A derived key must name the same record on every submission; without a due
        # date the server would take the time of submission, which differs each time.
        return SourceRow(line, values, None, "a record without a key needs a dueDate")
    record = ConsumptionRecord(
        subscription_id=field["subscriptionId"],
        quantity=field["quantity"],
        product_id=field["productId"] or None,
        item_code=field["itemCode"] or None,
        due_date=field["dueDate"] or None,
        key=field["key"] or None,
        description=values.get(columns_of["description"]) or None,
        price=field["price"] or None,
    )
    return SourceRow(line, values, record)


def write_errors(
    path: Path, columns: Sequence[str], failures: Sequence[tuple[SourceRow, str]]
) -> None:
    """Write the failed rows, as they were read plus an `error` column, atomically."""
    target = errors_path(path)
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow([*columns, ERROR_COLUMN])
        for row, message in failures:
            writer.writerow([*(row.values.get(c, "") for c in columns), message])
        stream.flush()
        os.fsync(stream.fileno())
    partial.replace(target)

"""SPEC §5: a replay of a `Key` with identical values answers 200, whatever form the
empty parts of the post take."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.ingest_factories import new_metered_seller, send, usage


@pytest.mark.parametrize(
    "override",
    [{}, {"PricePerUnit": None}, {"Name": "", "Description": ""}],
    ids=["empty", "null price", "empty texts"],
)
def test_a_replay_with_an_override_of_nothing_answers_200_with_the_stored_entry(
    client: TestClient, override: dict[str, object]
) -> None:
    metered = new_metered_seller(client)
    payload = usage(metered.component_id, 5, Key="vm-1/2026-01-15", ProductOverride=override)

    first = send(client, "POST", metered.usage_path(), metered, payload)
    again = send(client, "POST", metered.usage_path(), metered, payload)

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json()["Id"] == first.json()["Id"]
    assert again.json()["ProductOverride"] is None

"""SPEC §1 and §2, ids reveal nothing: no counter shared between sellers, nothing in an id
or its order tells one seller how many objects another has."""

from __future__ import annotations

import itertools

from fastapi.testclient import TestClient

from tests.ingest_factories import (
    MeteredSeller,
    new_metered_seller,
    record,
    run_bulk,
    send,
    usage,
)

FAR_APART = 2**32


def _post_usage(client: TestClient, metered: MeteredSeller, key: str) -> int:
    payload = usage(metered.component_id, 1, Key=key)
    response = send(client, "POST", metered.usage_path(), metered, payload)
    assert response.status_code == 201, response.text
    return int(response.json()["Id"])


def _listed_ids(client: TestClient, metered: MeteredSeller) -> list[int]:
    response = client.get(f"{metered.usage_path()}?take=500", headers=metered.headers)
    assert response.status_code == 200, response.text
    return [int(entry["Id"]) for entry in response.json()]


def _bulk(client: TestClient, metered: MeteredSeller, prefix: str, count: int) -> None:
    records = [
        record(metered.contract_id, metered.component_id, 1, key=f"{prefix}-{n}")
        for n in range(count)
    ]
    assert run_bulk(client, metered, records)["message"] == "Successful"


def test_usage_ids_of_two_sellers_posting_in_turn_reveal_nothing_of_the_others_count(
    client: TestClient,
) -> None:
    alice = new_metered_seller(client, name="Alice")
    bob = new_metered_seller(client, name="Bob")
    bobs = [_post_usage(client, bob, "b-1")]
    for n in range(6):
        _post_usage(client, alice, f"a-{n}")
    bobs.append(_post_usage(client, bob, "b-2"))
    _bulk(client, alice, "a-bulk", 6)
    bobs.append(_post_usage(client, bob, "b-3"))
    # With one counter Bob's ids would be 7, 14, 21: each gap one more than what Alice
    # stored meanwhile. Drawn at random, each post's id lies anywhere in 2**63.
    gaps = [abs(b - a) for a, b in itertools.pairwise(bobs)]
    assert all(gap > FAR_APART for gap in gaps), bobs


def test_a_bulk_submissions_ids_follow_its_records_whatever_another_seller_stores(
    client: TestClient,
) -> None:
    alice = new_metered_seller(client, name="Alice")
    bob = new_metered_seller(client, name="Bob")
    _post_usage(client, alice, "a-0")
    _bulk(client, bob, "b-bulk", 5)
    _bulk(client, alice, "a-bulk", 7)
    _post_usage(client, bob, "b-single")
    listed = _listed_ids(client, bob)
    single = listed[0]  # one due date: the later submission is listed first
    bulk = listed[1:]
    # Within Bob's submission the ids descend as listed (last record first) by random
    # steps; his later post lies far from them, not seven entries of Alice's away.
    assert bulk == sorted(bulk, reverse=True)
    assert all(b - a > 1 for a, b in zip(bulk[1:], bulk, strict=False))
    assert all(abs(single - id_) > FAR_APART for id_ in bulk)


def test_usage_listed_on_one_due_date_shows_the_latest_submission_first(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    first = _post_usage(client, metered, "first")
    second = _post_usage(client, metered, "second")
    third = _post_usage(client, metered, "third")
    assert _listed_ids(client, metered) == [third, second, first]


def test_a_usage_id_of_another_script_or_past_64_bits_is_a_404(client: TestClient) -> None:
    metered = new_metered_seller(client)
    for usage_id in ("\u0661\u0662", "\u00b9", "9" * 19, "0", str(2**63)):
        response = client.delete(f"{metered.usage_path()}/{usage_id}", headers=metered.headers)
        assert response.status_code == 404, (usage_id, response.text)

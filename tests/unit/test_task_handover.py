"""A bulk body handed from its POST to a worker of the same process, and records read on
trust (`decode_unconfirmed`): what a worker takes is always what the stored body reads as
(`decode_records`)."""

from __future__ import annotations

import pytest

from arrears.services import ingest
from arrears.services.consumption_records import confirmed
from arrears.services.task_handover import Handover

RECORD = '{"subscriptionId": "c1", "productId": "p1", "quantity": 1.5, "key": "k1"%s}'


def body_of(*records: str) -> bytes:
    return ('{"consumptions": [' + ", ".join(records) + "]}").encode()


PLAIN = body_of(RECORD % "", RECORD % ', "dueDate": "2026-01-20T09:30:00Z"')
REPEATED_KEY = body_of(RECORD % "", RECORD % ', "quantity": 2')
NOT_CANONICAL = body_of(RECORD % ', "dueDate": "2026-01-20T09:30:00.1234567Z"')
WITH_NULLS = body_of(RECORD % ', "description": null, "dueDate": null')


@pytest.mark.parametrize("body", [PLAIN, REPEATED_KEY, NOT_CANONICAL, WITH_NULLS])
def test_records_taken_from_the_handover_are_those_the_stored_body_reads_as(body: bytes) -> None:
    handover = Handover()
    handover.offer("task-1", body)
    assert handover.body("task-1") == body
    records = handover.take_records("task-1")
    assert records is not None
    confirmed(records)
    assert records == ingest.decode_records(body)


def test_the_handover_keeps_only_the_latest_offer_and_gives_it_once() -> None:
    handover = Handover()
    handover.offer("task-1", PLAIN)
    handover.offer("task-2", WITH_NULLS)
    assert handover.body("task-1") is None
    assert handover.take_records("task-1") is None
    assert handover.take_records("task-2") == ingest.decode_records(WITH_NULLS)
    assert handover.body("task-2") is None
    assert handover.take_records("task-2") is None


@pytest.mark.parametrize("body", [PLAIN, WITH_NULLS])
def test_records_read_on_trust_from_a_body_that_needs_no_second_look_are_confirmed(
    body: bytes,
) -> None:
    records = ingest.decode_unconfirmed(body)
    assert confirmed(records)
    assert records == ingest.decode_records(body)


@pytest.mark.parametrize("body", [REPEATED_KEY, NOT_CANONICAL])
def test_records_read_on_trust_that_were_read_wrongly_are_not_confirmed_and_become_the_sure_ones(
    body: bytes,
) -> None:
    records = ingest.decode_unconfirmed(body)
    assert not confirmed(records)
    assert records == ingest.decode_records(body)
    assert confirmed(records)  # checked once: the records are the sure ones now

"""The pure rules of webhooks (SPEC §13): the retry schedule, the signature, which
targets may receive events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from arrears.domain.webhooks import (
    RESPONSE_BODY_LIMIT,
    check_events,
    check_url,
    kept_response,
    new_secret,
    next_attempt,
    retry_delay,
    signature,
    signature_header,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_retries_wait_5_seconds_1_minute_10_minutes_1_hour_6_hours_then_12_hours() -> None:
    delays = [retry_delay(attempt) for attempt in range(1, 9)]
    assert delays == [
        timedelta(seconds=5),
        timedelta(minutes=1),
        timedelta(minutes=10),
        timedelta(hours=1),
        timedelta(hours=6),
        timedelta(hours=12),
        timedelta(hours=12),
        timedelta(hours=12),
    ]


def test_the_last_attempt_is_made_three_days_after_the_first_and_none_after() -> None:
    late = T0 + timedelta(days=2, hours=20)
    assert next_attempt(10, T0, late) == T0 + timedelta(days=3)
    assert next_attempt(11, T0, T0 + timedelta(days=3)) is None


def test_attempts_on_time_follow_the_schedule_from_each_failure() -> None:
    failed_at = T0 + timedelta(seconds=5, milliseconds=300)
    assert next_attempt(2, T0, failed_at) == failed_at + timedelta(minutes=1)


def test_the_signature_is_the_one_standard_webhooks_computes() -> None:
    secret = new_secret()
    body = b'{"type":"webhook.test","data":{"amount":12.50}}'
    ours = signature(secret, "msg_1", 1_767_225_600, body)
    theirs = Webhook(secret).sign("msg_1", datetime.fromtimestamp(1_767_225_600, UTC), body)
    assert ours == theirs


def test_a_rotation_signs_with_every_secret_separated_by_spaces() -> None:
    old, new = new_secret(), new_secret()
    header = signature_header([new, old], "msg_1", 1, b"{}")
    assert header.split(" ") == [signature(s, "msg_1", 1, b"{}") for s in (new, old)]


@pytest.mark.parametrize("url", ["https://hooks.example.com/arrears", "http://8.8.8.8:8080/x"])
def test_a_public_http_url_is_accepted(url: str) -> None:
    assert check_url(url, allow_private=False) == []


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/", "http://localhost:9000/", "http://10.0.0.1/", "http://[fd00::1]/"],
)
def test_private_targets_are_accepted_when_allowed(url: str) -> None:
    assert check_url(url, allow_private=True) == []
    assert [e.code for e in check_url(url, allow_private=False)] == ["private_target"]


@pytest.mark.parametrize(
    "url", ["hooks.example.com", "ftp://example.com/", "https://", "http://x:99999/"]
)
def test_a_url_that_is_not_absolute_http_is_invalid(url: str) -> None:
    assert [e.code for e in check_url(url, allow_private=True)] == ["invalid_url"]


def test_events_are_known_names_or_the_star() -> None:
    assert check_events(["*"]) == []
    assert check_events(["invoice.finalized", "contract.ended"]) == []
    assert [(e.field, e.code) for e in check_events(["invoice.paid?"])] == [
        ("Events[0]", "unknown_event")
    ]
    assert [e.code for e in check_events([])] == ["empty"]


def test_at_most_1_KiB_of_an_answer_is_kept_and_never_more_in_UTF_8() -> None:
    assert kept_response(b"a" * 5000) == "a" * RESPONSE_BODY_LIMIT
    kept = kept_response(b"a" + "é".encode() * 1000)  # a two-byte character cut at 1024
    assert len(kept.encode()) <= RESPONSE_BODY_LIMIT

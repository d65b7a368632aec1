"""Log lines carry UTC times, whatever the host's time zone."""

from __future__ import annotations

import calendar
import json
import logging
import os
import re
import time
from collections.abc import Iterator

import pytest

from arrears.logs import configure_logging


@pytest.fixture
def far_from_utc() -> Iterator[None]:
    """The process's local zone set to UTC-10 for the test."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Pacific/Honolulu"
    time.tzset()
    yield
    if previous is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = previous
    time.tzset()


@pytest.mark.usefixtures("far_from_utc")
def test_json_log_time_is_utc_iso_8601_with_z(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging(fmt="json")
        before = time.time()
        logging.getLogger("arrears.test").info("hello")
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    finally:
        root.handlers[:], root.level = handlers, level
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    logged = calendar.timegm(time.strptime(line["time"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert abs(logged - before) < 5  # UTC, not Honolulu's local time 10 hours behind

"""Metrics of real processes: `arrears serve --workers 2` shows one sum on any of its
processes, and `arrears worker --metrics-port` serves its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

REQUESTS = 40


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _started(arguments: list[str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "ARREARS_DATABASE_URL": f"sqlite:///{tmp_path / 'arrears.db'}",
        "ARREARS_LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with (tmp_path / "process.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 (our own program, our arguments)
            [sys.executable, "-m", "arrears", *arguments],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _until_up(url: str, process: subprocess.Popen[bytes], tmp_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, (tmp_path / "process.log").read_text()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer: {(tmp_path / 'process.log').read_text()}")


def _value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


@pytest.mark.slow
def test_serve_with_two_processes_shows_the_sum_of_both_on_every_scrape(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with _started(["serve", "--port", str(port), "--workers", "2"], tmp_path) as process:
        _until_up(f"{base}/readyz", process, tmp_path)
        # Parallel requests on fresh connections: both processes accept some of them.
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(
                pool.map(lambda _: httpx.get(f"{base}/healthz").status_code, range(REQUESTS))
            )
        assert statuses == [200] * REQUESTS
        for _ in range(6):
            scrape = httpx.get(f"{base}/metrics")
            assert scrape.status_code == 200
            counted = _value(
                scrape.text,
                "arrears_http_requests_total",
                method="GET",
                route="/healthz",
                status="200",
            )
            assert counted == REQUESTS


@pytest.mark.slow
def test_a_worker_serves_its_metrics_on_the_metrics_port(tmp_path: Path) -> None:
    env = {**os.environ, "ARREARS_DATABASE_URL": f"sqlite:///{tmp_path / 'arrears.db'}"}
    subprocess.run(
        [sys.executable, "-m", "arrears", "db", "upgrade"], env=env, check=True, capture_output=True
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with _started(["worker", "--metrics-port", str(port)], tmp_path) as process:
        _until_up(url, process, tmp_path)
        text = httpx.get(url).text
        assert _value(text, "arrears_tasks_applied_total", outcome="successful") == 0
        assert "arrears_billing_run_duration_seconds_bucket" in text

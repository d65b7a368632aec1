"""The README's quick start: the key check it tells a new user to run checks the key."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from tests.factories import new_seller

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
_CHECK = re.compile(
    r"curl -i -H ['\"]Authorization: Bearer [^'\"]+['\"] http://[^/\s]+(/[^\s'\"]+)"
)


def _checked_paths() -> list[str]:
    paths = [match.group(1) for match in _CHECK.finditer(README + MAKEFILE)]
    assert len(paths) == 2, "the README and `make run` each show one key check"
    return paths


def test_the_key_check_of_the_readme_and_make_run_answers_200_for_a_good_key(
    client: TestClient,
) -> None:
    seller = new_seller(client)
    for path in _checked_paths():
        assert client.get(path, headers=seller.headers).status_code == 200, path


def test_the_key_check_of_the_readme_and_make_run_answers_401_for_a_wrong_key(
    client: TestClient,
) -> None:
    seller = new_seller(client)
    wrong = {"Authorization": seller.headers["Authorization"][:-4] + "0000"}
    for path in _checked_paths():
        assert client.get(path, headers=wrong).status_code == 401, path


def test_the_readme_says_how_to_serve_on_another_port() -> None:
    assert "make run PORT=" in README
    assert "arrears serve --host 127.0.0.1 --port" in README
    assert re.search(r"^PORT\s+\?=", MAKEFILE, re.MULTILINE)

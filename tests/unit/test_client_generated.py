"""`Client` is generated from `AsyncClient` (`make client`), never edited by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "src" / "arrears" / "client" / "_sync.py"


def test_the_sync_client_is_what_make_client_generates_from_the_async_one(
    tmp_path: Path,
) -> None:
    fresh = tmp_path / "_sync.py"
    run = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(ROOT / "scripts" / "sync_client.py"), "--output", str(fresh)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, f"scripts/sync_client.py failed:\n{run.stderr}"
    assert GENERATED.read_text(encoding="utf-8") == fresh.read_text(encoding="utf-8"), (
        "src/arrears/client/_sync.py is not what src/arrears/client/_async.py generates: "
        "run `make client` and commit both files"
    )

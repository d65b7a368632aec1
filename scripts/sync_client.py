"""Generate the synchronous client (`src/arrears/client/_sync.py`) from the asynchronous one.

    python scripts/sync_client.py            # rewrite _sync.py (what `make client` runs)
    python scripts/sync_client.py --output F # write the generated client to F instead

`unasync` rewrites the tokens of `_async.py`: `async` and `await` dropped, `__aenter__`
and friends renamed, and the names below swapped. Whatever is not a name to swap has a
seam in the source (`AsyncSleep`, a type alias, for `Callable[[float], Awaitable[None]]`).
Then the module docstring is replaced by this client's own, and ruff sorts the imports and
formats the file, so that what is generated is exactly what `make lint` accepts.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tempfile
from pathlib import Path

import unasync  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path("src/arrears/client/_async.py")
TARGET = Path("src/arrears/client/_sync.py")
COMMAND = "make client"

# Names in the async source and their sync counterparts (beyond unasync's own table).
REPLACEMENTS = {
    "AsyncClient": "Client",  # ours, and httpx's
    "AsyncBaseTransport": "BaseTransport",
    "AsyncSleep": "Sleep",
    "aclose": "close",
    "asyncio": "time",  # asyncio.sleep -> time.sleep
}

HEADER = f'''\
# Generated from {SOURCE.as_posix()} by scripts/sync_client.py: do not edit.
# Edit the async client, then run `{COMMAND}` (docs/development.md).
"""The synchronous client: the same API as `AsyncClient`, not awaited."""
'''


def generate() -> str:
    """The sync client's source, as `make client` writes it."""
    source = (ROOT / SOURCE).read_text(encoding="utf-8")
    return _formatted(HEADER + _without_docstring(_unasynced(source)))


def _unasynced(source: str) -> str:
    # unasync works on files, from an `_async` folder to a `_sync` one.
    with tempfile.TemporaryDirectory() as folder:
        async_file = Path(folder, "_async", "client.py")
        async_file.parent.mkdir()
        async_file.write_text(source, encoding="utf-8")
        rule = unasync.Rule("/_async/", "/_sync/", additional_replacements=REPLACEMENTS)
        unasync.unasync_files([str(async_file)], rules=[rule])
        return Path(folder, "_sync", "client.py").read_text(encoding="utf-8")


def _without_docstring(source: str) -> str:
    """The module without its docstring, which speaks of the async client."""
    first = ast.parse(source).body[0]
    docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    if not docstring or first.end_lineno is None:
        raise SystemExit(f"{SOURCE} must begin with its docstring")
    return "".join(source.splitlines(keepends=True)[first.end_lineno :])


def _formatted(source: str) -> str:
    # Renamed imports fall out of order and lines lose their `await `: ruff puts both right,
    # with the project's settings (it finds them from the target's name).
    for command in (["check", "--fix-only", "--select", "I"], ["format"]):
        source = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
            [sys.executable, "-m", "ruff", *command, "--stdin-filename", str(TARGET), "-"],
            input=source,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    return source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / TARGET)
    output: Path = parser.parse_args().output
    output.write_text(generate(), encoding="utf-8")


if __name__ == "__main__":
    main()

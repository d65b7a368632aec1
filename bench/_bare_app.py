"""The HTTP stack's floor for bench_load: a bare Starlette app that answers a usage post
with a fixed `201` (the body of a stored entry) and `GET /healthz` with `200`, served by
the same server and options as `arrears serve` (`arrears.cli.run_server`).

Not a benchmark itself (`make bench` runs only `bench_*.py`).

    .venv/bin/python bench/_bare_app.py --port 8001 [--workers N]
"""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["CREATED", "app", "create"]

CREATED = (
    b'{"Id":"1234567890123","ContractId":"0661d6199178e145c5c70900","TransferredAt":'
    b'"2026-12-04T21:00:00.000000Z","ComponentId":"0661d6199178e145c5c70901","Quantity":'
    b'1.25,"Key":"c50-0-1-2","DueDate":"2026-11-28T00:00:00Z","Memo":null,'
    b'"ProductOverride":null,"InvoiceId":null}'
)


async def _created(request: Request) -> Response:
    await request.body()  # read, as the service does
    return Response(CREATED, 201, media_type="application/json")


async def _ok(_request: Request) -> Response:
    return Response(b'{"status":"ok"}', 200, media_type="application/json")


app = Starlette(
    routes=[
        Route("/api/v1/contracts/{contractId}/usage", _created, methods=["POST"]),
        Route("/healthz", _ok, methods=["GET"]),
    ]
)


def create() -> Starlette:
    """The app of each process of `--workers N`."""
    return app


if __name__ == "__main__":
    from arrears.cli import run_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    target = app if args.workers == 1 else "_bare_app:create"
    run_server(target, host="127.0.0.1", port=args.port, workers=args.workers)

"""Submitting consumption from code with `arrears.client` (sync and async).

.venv/bin/python examples/sdk_example.py CONTRACT_ID
"""

from __future__ import annotations

import asyncio
import os
import sys
from decimal import Decimal

from arrears.client import AsyncClient, Client, ConsumptionRecord, InvalidError


def records(contract_id: str) -> list[ConsumptionRecord]:
    return [
        ConsumptionRecord(
            subscription_id=contract_id,
            item_code="storage-gb",
            quantity=Decimal("1.5") * day,  # Decimal or str: never float
            due_date=f"2026-11-{day:02d}T00:00:00Z",
            key=f"sdk-example/{day}",
        )
        for day in range(1, 11)
    ]


def main(contract_id: str) -> None:
    url = os.environ.get("ARREARS_URL", "http://127.0.0.1:8000")
    key, seller = os.environ["ARREARS_API_KEY"], os.environ["ARREARS_SELLER_ID"]
    with Client(url, key, seller) as client:
        result = client.submit_bulk(records(contract_id))
        print(f"saved {result.saved}, duplicates {result.duplicates}, failed {len(result.failed)}")
        for failed in result.failed:
            print(f"  record {failed.index}: {failed.message}")
        try:
            client.post_usage(contract_id, component_id="nope", quantity="1", due_date="2026-11-02")
        except InvalidError as error:
            print(f"refused: {error.problem.detail} {[e.field for e in error.problem.errors]}")

    async def again() -> None:
        async with AsyncClient(url, key, seller) as client:
            result = await client.submit_bulk(records(contract_id))
            print(f"again: saved {result.saved}, duplicates {result.duplicates}")

    asyncio.run(again())


if __name__ == "__main__":
    main(sys.argv[1])

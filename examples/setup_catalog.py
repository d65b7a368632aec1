"""Create the sample catalog of `catalog.json` for a seller, then write `usage.csv` from
`usage.template.csv` with the new contracts' ids.

    export ARREARS_URL=http://127.0.0.1:8000 ARREARS_API_KEY=arr_... ARREARS_SELLER_ID=...
    .venv/bin/python examples/setup_catalog.py
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

from arrears.client import Client

HERE = Path(__file__).parent


def main() -> None:
    catalog = json.loads((HERE / "catalog.json").read_text(), parse_float=Decimal)
    with Client(
        os.environ.get("ARREARS_URL", "http://127.0.0.1:8000"),
        os.environ["ARREARS_API_KEY"],
        os.environ["ARREARS_SELLER_ID"],
    ) as client:
        components = {
            c["ItemCode"]: client.create_component(
                name=c["Name"], unit=c["Unit"], item_code=c["ItemCode"]
            )["Id"]
            for c in catalog["components"]
        }
        plan = client.create_plan(name=catalog["plan"]["Name"])
        variant_spec = catalog["planVariant"]
        variant = client.create_plan_variant(
            plan_id=plan["Id"],
            name=variant_spec["Name"],
            currency=variant_spec["Currency"],
            period_unit=variant_spec["BillingPeriod"]["Unit"],
            period_quantity=variant_spec["BillingPeriod"]["Quantity"],
            recurring_fee=variant_spec["RecurringFee"],
            metered_components=[
                {"ComponentId": components[code], "Pricing": pricing}
                for code, pricing in variant_spec["Pricing"].items()
            ],
        )
        usage = (HERE / "usage.template.csv").read_text()
        for spec in catalog["customers"]:
            customer = client.create_customer(company_name=spec["CompanyName"])
            contract = client.create_contract(
                customer_id=customer["Id"],
                plan_variant_id=variant["Id"],
                start_date=spec["contractStart"],
            )
            usage = usage.replace(spec["placeholder"], contract["Id"])
            print(f"{spec['placeholder']}={contract['Id']}  ({spec['CompanyName']})")
    (HERE / "usage.csv").write_text(usage)
    print(f"wrote {HERE / 'usage.csv'}")


if __name__ == "__main__":
    main()

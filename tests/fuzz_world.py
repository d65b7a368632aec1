"""The world the API fuzzer works in (`tests/api/test_fuzz.py`): a seller with a real
catalog, contracts, billed and unbilled usage, invoices and a bulk task, all made over
HTTP, and the ids the fuzzer may put into paths and bodies so that its requests reach
real behaviour and not only 404s.

Another seller owns one object of each kind too. Its ids are offered to the fuzzer as
well, so that every operation is also tried on another tenant's objects (which must
answer exactly like ids that do not exist).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import strategies as st

from arrears.domain.grammar import DECIMAL_GRAMMAR, NotInGrammar, parse_instant
from tests.billing_factories import (
    Metered,
    PricedContract,
    bill_at,
    bill_interim_at,
    end_contract,
    graduated,
    new_billing_seller,
    new_priced_contract,
    per_unit,
    post_usage,
    send_json,
)
from tests.factories import ADMIN, SellerKey

Ids = tuple[str, ...]
Json = dict[str, Any]

ITEM_CODE = "backup-gb"


# Valid values of fields whose validity no JSON schema states (a known currency code, a
# well-formed pricing or billing period, a decimal with few places): without them nearly
# every generated plan variant is refused with 422, and the fuzzer never gets past
# validation.
VALID_VALUES: dict[str, tuple[Any, ...]] = {
    "currency": ("EUR", "JPY", "KWD", "USD"),
    # Integers: schemathesis sends bodies through `json`, which has no Decimal.
    "pricing": (
        {"Model": "PerUnit", "PricePerUnit": 1},
        {
            "Model": "Graduated",
            "Tiers": [{"UpTo": 1000, "PricePerUnit": 2}, {"UpTo": None, "PricePerUnit": 1}],
        },
        {
            "Model": "Volume",
            "Tiers": [{"UpTo": 10, "PricePerUnit": 2}, {"UpTo": None, "PricePerUnit": 1}],
        },
        {"Model": "Package", "PackageSize": 100, "PricePerPackage": 5},
    ),
    # Few generated decimals have at most the 4 or 6 decimal places the API takes.
    "decimal": (0, 1, 5, 19, 100),
    "billingPeriod": (
        {"Unit": "Month", "Quantity": 1},
        {"Unit": "Week", "Quantity": 2},
        {"Unit": "Day", "Quantity": 7},
        {"Unit": "Year", "Quantity": 1},
    ),
    # Public targets on a name that never resolves: the fuzz app sends nothing anyway.
    "webhookUrl": ("https://hooks.example.invalid/arrears", "http://hooks.example.invalid:8080/"),
    "eventType": ("*", "invoice.finalized", "invoice.paid", "creditnote.issued"),
    # A discount's percentage: above 0, at most 100, few places.
    "percentage": (5, 20, 100),
}


@dataclass(frozen=True)
class FuzzWorld:
    """What the fuzzer knows: its seller, and real values by kind."""

    seller: SellerKey
    known: dict[str, tuple[Any, ...]]
    """The fuzzer's own ids by the API's path parameter name (`contractId`), and
    `VALID_VALUES`."""
    foreign: dict[str, Ids]
    """The other seller's ids, by the same names."""
    owned: dict[str, dict[str, Ids]]
    """Ids that only name something under their owner: `usageId` by contract id,
    `keyId` by seller id."""


def build_world(client: TestClient) -> FuzzWorld:
    """Seed both sellers; the test clock must stand at 2026-01-01T00:00:00Z.

    The fuzzer's seller gets: a contract on a plan variant with a free quota, graduated
    tiers, a recurring fee and tax, with a regular invoice (January) and an interim one;
    a contract that ended on January 20th and has its final invoice; two unused plan
    variants and a component (still mutable); billed usage, and unbilled usage due in
    December 2026, which no billing run of the fuzzer reaches (so it can be deleted); a
    finished bulk task; three spare API keys to revoke; an invoice to pay; three webhook
    endpoints, each with the delivery of a test event. The clock is left at
    2026-02-01T12:00:00Z."""
    other = _other_seller(client)
    seller = new_billing_seller(client, "Acme", prefix="ACME")
    storage = Metered("Storage", free_quota="10")
    compute = Metered("Compute", graduated(("100", "0.02"), (None, "0.01")), unit="h")
    main = new_priced_contract(client, seller, storage, compute, recurring_fee="5", tax_rate="19")
    ending = new_priced_contract(client, seller, Metered("Transfer"))
    _with_einvoice_parties(client, seller, main.customer_id, ending.customer_id)
    end_contract(client, ending, "2026-01-20T00:00:00Z")
    spare_component = _created(
        client, seller, "components", {"Name": "Backup", "Unit": "GB", "ItemCode": ITEM_CODE}
    )["Id"]
    spare_plan = _created(client, seller, "plans", {"Name": "Spare"})["Id"]
    spare_variants = tuple(
        _created(
            client,
            seller,
            "planvariants",
            {
                "PlanId": spare_plan,
                "Name": name,
                "Currency": "EUR",
                "BillingPeriod": {"Unit": unit, "Quantity": 1},
                "MeteredComponents": [{"ComponentId": spare_component, "Pricing": per_unit("1")}],
            },
        )["Id"]
        for name, unit in (("Yearly", "Year"), ("Weekly", "Week"), ("Changeable", "Day"))
    )

    post_usage(client, main, "12.5", "2026-01-05T00:00:00Z", Key="jan-storage")
    post_usage(client, main, "150", "2026-01-06T00:00:00Z", main.component_ids[1])
    post_usage(client, ending, "3", "2026-01-10T00:00:00Z")
    task_id = _bulk_task(client, seller, main)
    bill_at(client, "2026-02-01T00:00:00Z")  # main's January invoice, ending's final one
    post_usage(client, main, "2", "2026-02-01T00:00:00Z")
    bill_interim_at(client, main, "2026-02-01T06:00:00Z")
    post_usage(client, main, "1.25", "2026-02-01T06:00:00Z", Key="feb-storage")
    post_usage(client, main, "7", "2026-01-15T00:00:00Z", main.component_ids[1])
    bill_at(client, "2026-02-01T12:00:00Z")
    unbilled = tuple(
        post_usage(client, main, quantity, "2026-12-01T00:00:00Z")["Id"]
        for quantity in ("1", "2", "3")
    )

    invoices = _ids(client, seller, "/api/v1/invoices")
    assert len(invoices) == 3, invoices
    # An invoice of 1,000.00 that only payments are sent to: credit notes and voids of
    # the fuzzer soon leave nothing due on the invoices it knows.
    payable = new_priced_contract(client, seller, Metered("Payable"))
    post_usage(client, payable, "10000", "2026-02-01T12:00:00Z")
    payable_invoice = bill_interim_at(client, payable, "2026-02-01T12:00:00Z")["Id"]
    usage = (*unbilled, *_ids(client, seller, f"{main.usage_path}?billed=true"))
    keys = tuple(_new_key(client, seller.seller_id) for _ in range(3))
    webhooks = tuple(_webhook(client, seller) for _ in range(3))
    discount, coupon = _discount_and_coupon(client, seller)
    own: dict[str, Ids] = {
        "sellerId": (seller.seller_id,),
        "customerId": (main.customer_id, ending.customer_id),
        "componentId": (*main.component_ids, ending.component_id, spare_component),
        "itemCode": (ITEM_CODE,),
        "planId": _ids(client, seller, "/api/v1/plans"),
        "planVariantId": (main.plan_variant_id, ending.plan_variant_id, *spare_variants[:2]),
        # Never offered to a new contract: a variant in use is immutable (409), and the
        # fuzzer's contracts soon use every variant it knows.
        "changeablePlanVariantId": spare_variants[2:],
        "contractId": (main.contract_id, ending.contract_id),
        "usageId": usage,
        "invoiceId": invoices,
        "payableInvoiceId": (payable_invoice,),
        "taskId": (task_id,),
        "keyId": keys,
        "webhookId": tuple(webhook for webhook, _ in webhooks),
        "discountId": (discount,),
        "couponId": (coupon,),
    }
    return FuzzWorld(
        seller=seller,
        known={**own, **VALID_VALUES},
        foreign=other.foreign,
        owned={
            "usageId": {main.contract_id: usage, **other.owned["usageId"]},
            "keyId": {seller.seller_id: keys, **other.owned["keyId"]},
            "deliveryId": {
                **{webhook: (delivery,) for webhook, delivery in webhooks},
                **other.owned["deliveryId"],
            },
        },
    )


def _with_einvoice_parties(client: TestClient, seller: SellerKey, *customer_ids: str) -> None:
    """The seller's profile and the customers' addresses, before anything is billed:
    its invoices keep them and are e-invoices (SPEC §12)."""
    profile = {
        "LegalName": "Acme GmbH",
        "Address": {"Line1": "Torstr. 1", "PostalCode": "10119", "City": "Berlin", "Country": "DE"},
        "VatId": "DE136695976",
    }
    assert client.put("/api/v1/seller", json=profile, headers=seller.headers).status_code == 200
    address = {"Line1": "Ring 2", "PostalCode": "80331", "City": "München", "Country": "DE"}
    for customer_id in customer_ids:
        path = f"/api/v1/customers/{customer_id}"
        response = client.patch(path, json={"Address": address}, headers=seller.headers)
        assert response.status_code == 200, response.text


def _other_seller(client: TestClient) -> FuzzWorld:
    """Another seller with one object of each kind, billed once: its ids are `foreign`."""
    seller = new_billing_seller(client, "Initech", prefix="INIT")
    contract = new_priced_contract(client, seller)
    usage_id = post_usage(client, contract, "1", "2026-01-01T00:00:00Z")["Id"]
    invoice = bill_interim_at(client, contract, "2026-01-01T00:00:00Z")
    webhook, delivery = _webhook(client, seller)
    discount, coupon = _discount_and_coupon(client, seller)
    known = {
        "sellerId": (seller.seller_id,),
        "customerId": (contract.customer_id,),
        "componentId": contract.component_ids,
        "planVariantId": (contract.plan_variant_id,),
        "contractId": (contract.contract_id,),
        "usageId": (usage_id,),
        "invoiceId": (invoice["Id"],),
        "taskId": (_bulk_task(client, seller, contract),),
        "keyId": (seller.key_id,),
        "webhookId": (webhook,),
        "deliveryId": (delivery,),
        "discountId": (discount,),
        "couponId": (coupon,),
    }
    owned = {
        "usageId": {contract.contract_id: (usage_id,)},
        "keyId": {seller.seller_id: (seller.key_id,)},
        "deliveryId": {webhook: (delivery,)},
    }
    return FuzzWorld(seller=seller, known={}, foreign=known, owned=owned)


def _bulk_task(client: TestClient, seller: SellerKey, contract: PricedContract) -> str:
    record = {
        "subscriptionId": contract.contract_id,
        "productId": contract.component_id,
        "quantity": Decimal("4"),
        "dueDate": "2026-01-01T00:00:00Z",
        "key": "bulk-1",
    }
    path = f"/api/sellers/{seller.seller_id}/services/bulkconsumptions"
    response = send_json(client, "POST", path, seller, {"consumptions": [record]})
    assert response.status_code == 202, response.text
    task_id: str = response.json()["taskId"]
    return task_id


def _webhook(client: TestClient, seller: SellerKey) -> tuple[str, str]:
    """A webhook endpoint of the seller, and the delivery of a test event to it."""
    body = {"Url": "https://hooks.example.invalid/arrears", "Events": ["*"]}
    webhook: str = _created(client, seller, "webhooks", body)["Id"]
    response = client.post(f"/api/v1/webhooks/{webhook}/test", headers=seller.headers)
    assert response.status_code == 202, response.text
    delivery: str = response.json()["Id"]
    return webhook, delivery


def _discount_and_coupon(client: TestClient, seller: SellerKey) -> tuple[str, str]:
    """A discount of the seller (20 % off usage) and a coupon for it."""
    body = {"Name": "Welcome", "Percentage": 20, "AppliesTo": "Usage"}
    discount: str = _created(client, seller, "discounts", body)["Id"]
    coupon = _created(client, seller, "coupons", {"Code": "WELCOME", "DiscountId": discount})
    return discount, coupon["Id"]


def _created(client: TestClient, seller: SellerKey, path: str, payload: Json) -> Json:
    response = send_json(client, "POST", f"/api/v1/{path}", seller, payload)
    assert response.status_code == 201, response.text
    body: Json = response.json()
    return body


def _ids(client: TestClient, seller: SellerKey, path: str) -> Ids:
    separator = "&" if "?" in path else "?"
    response = client.get(f"{path}{separator}take=500", headers=seller.headers)
    assert response.status_code == 200, response.text
    return tuple(str(item["Id"]) for item in response.json())


def _new_key(client: TestClient, seller_id: str) -> str:
    response = client.post(f"/admin/sellers/{seller_id}/keys", headers=ADMIN)
    assert response.status_code == 201, response.text
    key_id: str = response.json()["keyId"]
    return key_id


# -- the grammars of decimals and instants (SPEC §2, §5; docs/api-conventions.md) --------

_DECIMAL = re.compile(DECIMAL_GRAMMAR, re.ASCII)
_TEXT = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


def decimal_texts_in_grammar() -> st.SearchStrategy[str]:
    """Strings every decimal field takes as a decimal (its rules may still refuse one)."""
    return st.from_regex(_DECIMAL, fullmatch=True)


def decimal_texts_outside_grammar() -> st.SearchStrategy[str]:
    """Strings no decimal field takes: what Python's `Decimal()` reads but the API must
    not (`1_000`, other scripts' digits, whitespace, NaN), and any other text."""
    lenient = st.sampled_from(
        ["1_000", "\u0661\u0662", "\uff11", " 1", "1 ", "\t1", "NaN", "-Infinity", "sNaN", "inf"]
    )
    malformed = st.sampled_from([".5", "5.", "1e", "+-1", "1.2.3", "0x10", "1,5", "", "--1"])
    spliced = st.tuples(decimal_texts_in_grammar(), st.sampled_from(["_", " ", "\u0663", "e"])).map(
        lambda parts: parts[0][:1] + parts[1] + parts[0][1:]
    )
    anything = st.text(_TEXT, max_size=12)
    # The samples are refused whatever the grammar says: it must not take them.
    made = st.one_of(spliced, anything).filter(lambda text: not _DECIMAL.fullmatch(text))
    return st.one_of(lenient, malformed, made)


def instant_texts_in_grammar() -> st.SearchStrategy[str]:
    """ISO 8601 / RFC 3339 instants as the API takes them: a date, or a date and time
    with up to 9 places and an offset `Z`, `+hh:mm`, `-hh:mm` or none (UTC)."""
    return st.builds(
        _instant_text,
        st.datetimes(min_value=_naive(1900, 1, 2), max_value=_naive(7999, 12, 30)),
        st.integers(0, 9),
        st.sampled_from(["Z", "", "+00:00", "-00:00", "+05:30", "-08:00", "+14:00"]),
        st.booleans(),
    )


def _naive(year: int, month: int, day: int) -> datetime:
    # hypothesis bounds naive datetimes by naive bounds; the texts add their own offsets.
    return datetime(year, month, day, tzinfo=UTC).replace(tzinfo=None)


def _instant_text(moment: datetime, places: int, offset: str, date_only: bool) -> str:
    if date_only:
        return moment.strftime("%Y-%m-%d")
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if places:
        text += "." + f"{moment.microsecond:06d}{'123'}"[:places]
    return text + offset


def instant_texts_outside_grammar() -> st.SearchStrategy[str]:
    """Strings no timestamp field takes: what Python's `fromisoformat` reads but the
    grammar does not (seconds in an offset, week and basic forms, a space separator,
    lower-case designators), impossible instants, and any other text."""
    lenient = st.sampled_from(
        [
            "2026-01-20T00:00:00+05:30:99",
            "2026-01-20T00:00:00+0530",
            "2026-01-20T00:00:00+05",
            "2026-W03-2",
            "20260120T000000Z",
            "2026-01-20 00:00:00Z",
            "2026-01-20t00:00:00z",
            "2026-01-20T00:00Z",
            "2026-01-20T24:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-20T00:00:00.1234567890Z",
            "2026-01-20T00:00:00+24:00",
            "\u0662\u0660\u0662\u0666-01-20",
            "1700000000",
            "nope",
        ]
    )
    shifted = st.builds(
        lambda moment, seconds: (
            (moment.replace(tzinfo=UTC) + timedelta(seconds=seconds))
            .astimezone(timezone(timedelta(hours=5, minutes=30, seconds=seconds % 59 + 1)))
            .isoformat()
        ),
        st.datetimes(min_value=_naive(2000, 1, 1), max_value=_naive(2100, 1, 1)),
        st.integers(0, 1000),
    )
    anything = st.text(_TEXT, max_size=25)
    return st.one_of(lenient, shifted, anything.filter(lambda text: not _in_instant_grammar(text)))


def _in_instant_grammar(text: str) -> bool:
    try:
        parse_instant(text)
    except NotInGrammar:
        return False
    return True

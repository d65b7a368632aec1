"""SPEC §8: reading invoices, their numbers, tracing lines to usage, contract previews
and interim billing on demand; and that nothing changes an issued invoice."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.services.contract_billing import preview_period
from arrears.store.database import Database
from arrears.store.unit_of_work import UnitOfWork
from tests.billing_factories import (
    START,
    Metered,
    PricedContract,
    app_without_worker,
    bill_at,
    billed_ids,
    end_contract,
    get_invoice,
    get_invoice_raw,
    invoices_of,
    line_summary,
    move_clock,
    new_billing_seller,
    new_contract_on,
    new_priced_contract,
    only_invoice,
    period,
    post_usage,
    sequence_number,
    totals,
    usage_entries,
)
from tests.ingest_factories import exact, problem


@pytest.fixture
def client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    with TestClient(app_without_worker(settings, database, clock)) as test_client:
        yield test_client


def _listed(client: TestClient, contract: PricedContract, query: str) -> tuple[list[str], int]:
    """Invoice numbers of `GET /api/v1/invoices?<query>` in answer order, and the
    `X-Total-Count`."""
    response = client.get(f"/api/v1/invoices?{query}", headers=contract.headers)
    assert response.status_code == 200, response.text
    numbers = [invoice["InvoiceNumber"] for invoice in response.json()]
    return numbers, int(response.headers["X-Total-Count"])


def _interim(client: TestClient, contract: PricedContract) -> dict[str, object]:
    response = client.post(f"{contract.path}/interimbilling", headers=contract.headers)
    assert response.status_code == 201, response.text
    body: dict[str, object] = exact(response)
    return body


# -- listing ------------------------------------------------------------------------------


def test_invoices_are_filtered_by_contract_id_and_by_customer_id(client: TestClient) -> None:
    first = new_priced_contract(client)
    second_id = new_contract_on(client, first.seller, first.customer_id, first.plan_variant_id)
    other = new_priced_contract(client, first.seller)  # another customer of the seller
    bill_at(client, "2026-02-01T00:00:00Z")

    def listed(query: str) -> set[tuple[str, str]]:
        response = client.get(f"/api/v1/invoices?{query}", headers=first.headers)
        assert response.status_code == 200, response.text
        assert int(response.headers["X-Total-Count"]) == len(response.json())
        return {(i["ContractId"], i["CustomerId"]) for i in response.json()}

    assert listed(f"contractId={first.contract_id}") == {(first.contract_id, first.customer_id)}
    assert listed(f"customerId={first.customer_id}") == {
        (first.contract_id, first.customer_id),
        (second_id, first.customer_id),
    }
    assert listed(f"customerId={other.customer_id}") == {(other.contract_id, other.customer_id)}
    assert listed(f"customerId={first.customer_id}&contractId={other.contract_id}") == set()
    assert len(listed("")) == 3


def test_invoices_are_filtered_by_document_date_from_inclusive_to_exclusive(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, recurring_fee="1")
    bill_at(client, "2026-02-01T00:00:00Z")  # INV-2026-000001
    bill_at(client, "2026-03-01T00:00:00Z")  # INV-2026-000002
    post_usage(client, contract, "1", "2026-03-05T00:00:00Z")
    move_clock(client, "2026-03-10T00:00:00Z")
    _interim(client, contract)  # INV-2026-000003

    feb = "from=2026-02-01T00:00:00Z&to=2026-03-01T00:00:00Z"
    assert _listed(client, contract, feb) == (["INV-2026-000001"], 1)
    assert _listed(client, contract, "from=2026-03-01T00:00:00Z") == (
        ["INV-2026-000003", "INV-2026-000002"],
        2,
    )
    assert _listed(client, contract, "to=2026-03-10T00:00:00Z") == (
        ["INV-2026-000002", "INV-2026-000001"],
        2,
    )


def test_invoices_are_listed_newest_first_in_pages_with_x_total_count(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, recurring_fee="1")
    for month in ("02", "03", "04"):
        bill_at(client, f"2026-{month}-01T00:00:00Z")

    query = f"contractId={contract.contract_id}"
    assert _listed(client, contract, f"{query}&skip=0&take=2") == (
        ["INV-2026-000003", "INV-2026-000002"],
        3,
    )
    assert _listed(client, contract, f"{query}&skip=2&take=2") == (["INV-2026-000001"], 3)


# -- one invoice --------------------------------------------------------------------------


def _party(name: str) -> dict[str, object]:
    return {"Name": name, "Address": None, "VatId": None, "TaxNumber": None, "BankAccount": None}


def test_an_invoice_answers_every_field_of_spec_8_with_amounts_in_cents(
    client: TestClient,
) -> None:
    contract = new_priced_contract(
        client, None, Metered(free_quota="100"), recurring_fee="9.90", tax_rate="19"
    )
    first = post_usage(client, contract, "60", "2026-01-05T00:00:00Z")
    second = post_usage(client, contract, "70", "2026-01-20T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    [listed] = invoices_of(client, contract)

    response = get_invoice_raw(client, contract.seller, listed["Id"])
    assert response.status_code == 200, response.text
    assert exact(response) == listed
    assert listed == {
        "Id": listed["Id"],
        "InvoiceNumber": "INV-2026-000001",
        "CustomerId": contract.customer_id,
        "ContractId": contract.contract_id,
        "Kind": "Regular",
        "Currency": "EUR",
        "DocumentDate": "2026-02-01T00:00:00Z",
        "PeriodStart": START,
        "PeriodEnd": "2026-02-01T00:00:00Z",
        "Lines": [
            {
                "Kind": "Usage",
                "ComponentId": contract.component_id,
                "Description": "Storage",
                "Quantity": 130,
                "FreeQuantity": 100,
                "BillableQuantity": 30,
                "Late": False,
                "UnitPrice": Decimal("0.1"),
                "Tiers": [{"Quantity": 30, "UnitPrice": Decimal("0.1"), "Amount": 3}],
                "Amount": Decimal("3.00"),
                "UsageIds": sorted([first["Id"], second["Id"]], key=int),
            },
            {
                "Kind": "RecurringFee",
                "ComponentId": None,
                "Description": "Recurring fee 2026-01-01 - 2026-02-01",
                "Quantity": 1,
                "FreeQuantity": 0,
                "BillableQuantity": 1,
                "Late": False,
                "UnitPrice": Decimal("9.9"),
                "Tiers": [],
                "Amount": Decimal("9.90"),
                "UsageIds": [],
            },
        ],
        # 12.90 x 19 % = 2.451, rounded to 2.45
        "Subtotal": Decimal("12.90"),
        "TaxRate": 19,
        "TaxAmount": Decimal("2.45"),
        "Total": Decimal("15.35"),
        "Status": "Finalized",
        # SPEC §8 and §10: due in 14 days (no payment terms set), nothing paid or credited,
        # the parties as issued (no profile yet: the names they signed up with).
        "DueDate": "2026-02-15T00:00:00Z",
        "PaymentStatus": "Open",
        "AmountCredited": Decimal("0.00"),
        "AmountPaid": Decimal("0.00"),
        "AmountDue": Decimal("15.35"),
        "Seller": _party("Acme"),
        "Customer": _party("Globex"),
    }
    # amounts carry the currency's minor unit in the JSON text itself
    assert '"Amount":3.00,' in response.text
    assert '"Amount":9.90,' in response.text
    assert '"Subtotal":12.90,"TaxRate":19,"TaxAmount":2.45,"Total":15.35,' in response.text


# -- numbers ------------------------------------------------------------------------------


def test_invoice_numbers_are_prefix_year_and_6_digits_gapless_across_a_sellers_contracts(
    client: TestClient,
) -> None:
    first = new_priced_contract(client, new_billing_seller(client, prefix="ACME"))
    new_contract_on(client, first.seller, first.customer_id, first.plan_variant_id)
    bill_at(client, "2026-03-01T00:00:00Z")  # two periods of two contracts

    numbers, total = _listed(client, first, "take=500")
    assert total == 4
    assert sorted(numbers) == [f"ACME-2026-00000{n}" for n in (1, 2, 3, 4)]
    # a contract's periods are numbered in the order of the periods
    by_period = sorted(invoices_of(client, first), key=lambda invoice: invoice["PeriodStart"])
    numbers_by_period = [sequence_number(invoice["InvoiceNumber"]) for invoice in by_period]
    assert numbers_by_period == sorted(numbers_by_period)


def test_a_new_year_restarts_invoice_numbers_at_000001(client: TestClient) -> None:
    contract = new_priced_contract(client, start="2026-11-01T00:00:00Z", recurring_fee="1")
    bill_at(client, "2026-12-01T00:00:00Z")
    bill_at(client, "2027-01-01T00:00:00Z")
    bill_at(client, "2027-02-01T00:00:00Z")

    assert [(i["InvoiceNumber"], i["PeriodStart"]) for i in invoices_of(client, contract)] == [
        ("INV-2026-000001", "2026-11-01T00:00:00Z"),
        ("INV-2027-000001", "2026-12-01T00:00:00Z"),  # issued in 2027
        ("INV-2027-000002", "2027-01-01T00:00:00Z"),
    ]


def test_two_sellers_number_their_invoices_independently(client: TestClient) -> None:
    acme = new_priced_contract(client, new_billing_seller(client, "Acme", prefix="ACME"))
    globex = new_priced_contract(client, new_billing_seller(client, "Globex", prefix="GLX"))
    bill_at(client, "2026-03-01T00:00:00Z")

    assert [i["InvoiceNumber"] for i in invoices_of(client, acme)] == [
        "ACME-2026-000001",
        "ACME-2026-000002",
    ]
    assert [i["InvoiceNumber"] for i in invoices_of(client, globex)] == [
        "GLX-2026-000001",
        "GLX-2026-000002",
    ]


# -- tracing ------------------------------------------------------------------------------


def test_every_line_is_traced_to_the_usage_it_bills_by_usage_ids_and_the_usage_route(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, None, Metered(free_quota="10"))
    bill_at(client, "2026-02-01T00:00:00Z")
    post_usage(client, contract, "20", "2026-01-20T00:00:00Z")  # late
    post_usage(client, contract, "5", "2026-02-03T00:00:00Z")
    post_usage(client, contract, "6", "2026-02-04T00:00:00Z")
    override = {"PricePerUnit": Decimal("1.5"), "Name": "Burst"}
    post_usage(client, contract, "2", "2026-02-05T00:00:00Z", ProductOverride=override)
    post_usage(client, contract, "9", "2026-03-05T00:00:00Z")  # after the period
    bill_at(client, "2026-03-01T00:00:00Z")

    invoice = invoices_of(client, contract)[-1]
    assert [line_summary(line)[0] for line in invoice["Lines"]] == [
        "Storage",
        "Storage (late usage)",
        "Burst",
    ]
    on_lines = billed_ids(invoice)
    assert len(on_lines) == len(set(on_lines)) == 4
    response = client.get(f"/api/v1/invoices/{invoice['Id']}/usage", headers=contract.headers)
    assert response.status_code == 200, response.text
    assert sorted(entry["Id"] for entry in response.json()) == on_lines
    linked = [e["Id"] for e in usage_entries(client, contract) if e["InvoiceId"] == invoice["Id"]]
    assert sorted(linked) == on_lines


# -- previews and interim billing ---------------------------------------------------------


def test_a_contract_preview_answers_the_would_be_invoice_and_saves_nothing(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, None, Metered(free_quota="100"), recurring_fee="9.90")
    post_usage(client, contract, "60", "2026-01-05T00:00:00Z")
    post_usage(client, contract, "70", "2026-01-12T00:00:00Z")
    post_usage(client, contract, "50", "2026-01-25T00:00:00Z")  # not yet due
    move_clock(client, "2026-01-15T00:00:00Z")

    response = client.get(f"{contract.path}/preview", headers=contract.headers)
    assert response.status_code == 200, response.text
    preview = exact(response)
    assert (preview["Id"], preview["InvoiceNumber"], preview["Status"]) == (None, None, "Preview")
    assert (preview["Kind"], *period(preview)) == ("Regular", START, "2026-02-01T00:00:00Z")
    assert preview["DocumentDate"] == "2026-01-15T00:00:00Z"
    assert [line_summary(line) for line in preview["Lines"]] == [
        ("Storage", "130", "100", "30", False, "3.00"),
        ("Recurring fee 2026-01-01 - 2026-02-01", "1", "0", "1", False, "9.90"),
    ]
    assert usage_entries(client, contract, "billed=true") == []
    assert invoices_of(client, contract) == []
    bill_at(client, "2026-02-01T00:00:00Z")
    assert only_invoice(client, contract)["InvoiceNumber"] == "INV-2026-000001"


def test_a_preview_rates_usage_without_linking_it_even_in_a_transaction_that_commits(
    client: TestClient, database: Database, clock: TestClock
) -> None:
    contract = new_priced_contract(client)
    post_usage(client, contract, "10", "2026-01-10T00:00:00Z")
    move_clock(client, "2026-01-15T00:00:00Z")

    with database.write() as session:  # not a rehearsal: a link made here would stay
        draft = preview_period(
            UnitOfWork(session, contract.seller.seller_id), clock, contract.contract_id
        )
    assert [(line.quantity, line.amount) for line in draft.lines] == [
        (Decimal("10"), Decimal("1.00"))
    ]
    assert usage_entries(client, contract, "billed=true") == []


def test_a_contract_preview_with_a_period_due_but_unbilled_previews_the_next_and_saves_nothing(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    post_usage(client, contract, "10", "2026-01-10T00:00:00Z")
    post_usage(client, contract, "20", "2026-02-03T00:00:00Z")
    move_clock(client, "2026-02-05T00:00:00Z")  # January is due; nobody billed it yet

    response = client.get(f"{contract.path}/preview", headers=contract.headers)
    assert response.status_code == 200, response.text
    preview = exact(response)
    assert period(preview) == ("2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z")
    assert [line_summary(line) for line in preview["Lines"]] == [
        ("Storage", "20", "0", "20", False, "2.00")
    ]
    assert invoices_of(client, contract) == []
    assert usage_entries(client, contract, "billed=true") == []
    bill_at(client, "2026-02-05T00:00:00Z")  # January's invoice is still the first number
    assert [i["InvoiceNumber"] for i in invoices_of(client, contract)] == ["INV-2026-000001"]


def test_a_contract_preview_after_the_final_invoice_charges_nothing_more(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, recurring_fee="9.90")
    end_contract(client, contract, "2026-01-20T00:00:00Z")
    bill_at(client, "2026-03-01T00:00:00Z")
    assert only_invoice(client, contract)["Kind"] == "Final"

    response = client.get(f"{contract.path}/preview", headers=contract.headers)
    if response.status_code == 200:  # an empty would-be invoice is as right as a 409
        preview = exact(response)
        assert (preview["Lines"], str(preview["Total"])) == ([], "0.00")
        assert preview["PeriodEnd"] <= "2026-01-20T00:00:00Z"
    else:
        problem(response, 409)


def test_interim_billing_answers_201_with_the_invoice_then_204_when_nothing_is_due(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    entry = post_usage(client, contract, "10", "2026-01-05T00:00:00Z")
    move_clock(client, "2026-01-10T00:00:00Z")

    invoice = _interim(client, contract)
    assert (invoice["Kind"], invoice["InvoiceNumber"]) == ("Interim", "INV-2026-000001")
    assert billed_ids(invoice) == [entry["Id"]]
    assert get_invoice(client, contract.seller, str(invoice["Id"])) == invoice

    again = client.post(f"{contract.path}/interimbilling", headers=contract.headers)
    assert (again.status_code, again.content) == (204, b"")
    assert len(invoices_of(client, contract)) == 1


def test_a_foreign_invoice_or_contract_answers_404_like_an_unknown_one(
    client: TestClient,
) -> None:
    ours = new_priced_contract(client)
    theirs = new_priced_contract(client)
    bill_at(client, "2026-02-01T00:00:00Z")
    foreign = only_invoice(client, theirs)["Id"]

    for invoice_id in (foreign, "0" * 24):
        problem(get_invoice_raw(client, ours.seller, invoice_id), 404)
        response = client.get(f"/api/v1/invoices/{invoice_id}/usage", headers=ours.headers)
        problem(response, 404)
    other = f"/api/v1/contracts/{theirs.contract_id}"
    problem(client.get(f"{other}/preview", headers=ours.headers), 404)
    problem(client.post(f"{other}/interimbilling", headers=ours.headers), 404)
    assert _listed(client, ours, f"contractId={theirs.contract_id}") == ([], 0)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_no_route_changes_an_issued_invoice(client: TestClient, method: str) -> None:
    contract = new_priced_contract(client)
    post_usage(client, contract, "10", "2026-01-05T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    invoice = only_invoice(client, contract)

    response = client.request(
        method,
        f"/api/v1/invoices/{invoice['Id']}",
        json={"Total": 0, "Lines": []},
        headers=contract.headers,
    )
    problem(response, 405)
    assert get_invoice(client, contract.seller, invoice["Id"]) == invoice
    assert totals(invoice) == ("1.00", "0", "0.00", "1.00")

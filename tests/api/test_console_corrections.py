"""SPEC §10, §11, §12 and §14: an invoice's PDF, balance, credit notes and payments in
the console, and crediting, voiding and recording a payment there, each confirmed first;
the credit notes' pages; a contract's phases.

The world (tests/console_factories.py): Globex's January invoice of 1.50 EUR (one line,
storage, 15 GB billable at 0.10, 0 % tax); the clock stands at 15 February 2026."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from arrears.domain.clock import TestClock
from arrears.store.database import Database
from arrears.worker.runner import Worker
from tests.billing_factories import Metered, get_invoice_raw, invoices_of, run_billing
from tests.console_factories import ConsoleWorld, console_world, sign_in
from tests.factories import new_seller
from tests.plan_factories import new_catalog, new_contract, new_variant, ordered


@pytest.fixture
def world(manual_client: TestClient, database: Database, clock: TestClock) -> ConsoleWorld:
    world = console_world(manual_client)
    Worker(database, clock).run_until_idle()
    return world


@pytest.fixture
def token(manual_client: TestClient, world: ConsoleWorld) -> str:
    """The CSRF token of the signed-in session of the world's seller."""
    return sign_in(manual_client, world.seller)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("\xa0", " ")


def _post(client: TestClient, world: ConsoleWorld, action: str, **form: str) -> Any:
    return client.post(
        f"/console/invoices/{world.invoice['Id']}/{action}", data=form, follow_redirects=False
    )


def _standing(client: TestClient, world: ConsoleWorld) -> dict[str, Any]:
    response = get_invoice_raw(client, world.seller, world.invoice["Id"])
    assert response.status_code == 200, response.text
    # Amounts as the exact decimals they were sent as, not floats.
    body: dict[str, Any] = response.json(parse_float=Decimal)
    return body


def test_an_invoice_shows_its_pdf_link_balance_due_date_credit_notes_and_payments(
    manual_client: TestClient, world: ConsoleWorld, token: str
) -> None:
    text = _text(manual_client.get(f"/console/invoices/{world.invoice['Id']}").text)
    assert "Payment status Open" in text
    assert "Credited €0.00 Paid €0.00 Due €1.50" in text
    assert "Due date Feb 15, 2026" in text  # 1 February and fourteen days
    assert "No credit notes." in text
    assert "No payments." in text
    assert "Download the PDF" in text


def test_the_invoice_pdf_downloads_under_the_console(
    manual_client: TestClient, world: ConsoleWorld, token: str
) -> None:
    response = manual_client.get(f"/console/invoices/{world.invoice['Id']}/pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert world.invoice["InvoiceNumber"] in response.headers["content-disposition"]


def test_recording_a_payment_asks_first_then_records_it(
    manual_client: TestClient, world: ConsoleWorld, token: str
) -> None:
    form = {"csrf_token": token, "amount": "0.50", "reference": "bank-0001"}
    asked = _post(manual_client, world, "payment", **form)
    assert asked.status_code == 200, asked.text
    assert "bank-0001" in asked.text
    assert 'name="confirmed" value="yes"' in asked.text
    assert _standing(manual_client, world)["AmountPaid"] == Decimal("0.00")
    done = _post(manual_client, world, "payment", confirmed="yes", **form)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/console/invoices/{world.invoice['Id']}"
    text = _text(manual_client.get(done.headers["location"]).text)
    assert "Paid €0.50 Due €1.00" in text
    assert "bank-0001 €0.50" in text


def test_crediting_a_line_by_amount_issues_a_credit_note_with_its_pdf(
    manual_client: TestClient, world: ConsoleWorld, token: str
) -> None:
    form = {"csrf_token": token, "line": "1", "amount": "0.40", "reason": "Outage"}
    assert _post(manual_client, world, "credit", **form).status_code == 200
    done = _post(manual_client, world, "credit", confirmed="yes", **form)
    assert done.status_code == 303, done.text
    html = manual_client.get(done.headers["location"]).text
    assert "Credited €0.40 Paid €0.00 Due €1.10" in _text(html)
    assert "Outage €0.40" in _text(html)
    pdf_link = re.search(r'href="(/console/creditnotes/[^"]+/pdf)"', html)
    assert pdf_link, html
    pdf = manual_client.get(pdf_link.group(1))
    assert pdf.status_code == 200, pdf.text
    assert pdf.content.startswith(b"%PDF")


def test_crediting_the_whole_invoice_leaves_nothing_due(
    manual_client: TestClient, world: ConsoleWorld, token: str
) -> None:
    form = {"csrf_token": token, "line": "all", "reason": "Goodwill", "confirmed": "yes"}
    assert _post(manual_client, world, "credit", **form).status_code == 303
    assert _standing(manual_client, world)["AmountCredited"] == Decimal("1.50")
    assert _standing(manual_client, world)["AmountDue"] == Decimal("0.00")


def test_crediting_more_than_the_line_has_is_shown_on_the_page_with_409(
    manual_client: TestClient, world: ConsoleWorld, token: str
) -> None:
    form = {"csrf_token": token, "line": "1", "amount": "2.00", "reason": "Too much"}
    refused = _post(manual_client, world, "credit", confirmed="yes", **form)
    assert refused.status_code == 409, refused.text
    assert 'role="alert"' in refused.text
    assert f"Invoice {world.invoice['InvoiceNumber']}" in refused.text
    assert _standing(manual_client, world)["AmountCredited"] == Decimal("0.00")


def test_a_payment_without_a_readable_amount_is_shown_on_the_page_with_422(
    manual_client: TestClient, world: ConsoleWorld, token: str
) -> None:
    form = {"csrf_token": token, "amount": "a lot", "reference": "bank-0002"}
    refused = _post(manual_client, world, "payment", **form)
    assert refused.status_code == 422, refused.text
    assert "amount: Enter an amount" in refused.text


def test_voiding_shows_the_invoice_voided_and_its_period_is_billed_again(
    manual_client: TestClient, world: ConsoleWorld, token: str
) -> None:
    form = {"csrf_token": token, "reason": "Wrong price"}
    asked = _post(manual_client, world, "void", **form)
    assert asked.status_code == 200, asked.text
    assert _standing(manual_client, world)["PaymentStatus"] == "Open"
    done = _post(manual_client, world, "void", confirmed="yes", **form)
    assert done.status_code == 303, done.text
    text = _text(manual_client.get(done.headers["location"]).text)
    assert "Payment status Voided" in text
    assert "its period is reopened" in text
    assert "Wrong price €1.50" in text  # the credit note the void issued
    run_billing(manual_client)  # January, reopened, is billed again
    assert len(invoices_of(manual_client, world.contract)) == 2


def test_a_voided_invoice_takes_no_payment(
    manual_client: TestClient, world: ConsoleWorld, token: str
) -> None:
    _post(manual_client, world, "void", csrf_token=token, reason="Wrong", confirmed="yes")
    form = {"csrf_token": token, "amount": "1.50", "reference": "late", "confirmed": "yes"}
    refused = _post(manual_client, world, "payment", **form)
    assert refused.status_code == 409, refused.text
    assert "voided" in refused.text


@pytest.mark.parametrize("action", ["credit", "void", "payment"])
def test_an_action_without_its_csrf_token_is_refused_and_changes_nothing(
    manual_client: TestClient, world: ConsoleWorld, token: str, action: str
) -> None:
    form = {"line": "all", "reason": "x", "amount": "1.50", "reference": "r", "confirmed": "yes"}
    refused = _post(manual_client, world, action, **form)
    assert refused.status_code == 403, refused.text
    forged = _post(manual_client, world, action, csrf_token="0" * 64, **form)
    assert forged.status_code == 403, forged.text
    standing = _standing(manual_client, world)
    assert standing["PaymentStatus"] == "Open"
    assert standing["AmountDue"] == Decimal("1.50")


@pytest.mark.parametrize("action", ["credit", "void", "payment"])
def test_another_sellers_session_cannot_act_on_the_invoice(
    manual_client: TestClient, world: ConsoleWorld, action: str
) -> None:
    other_token = sign_in(manual_client, new_seller(manual_client, "Beta Cloud"))
    form = {"line": "all", "reason": "x", "amount": "1.50", "reference": "r"}
    for confirmed in ("", "yes"):
        response = _post(
            manual_client, world, action, csrf_token=other_token, confirmed=confirmed, **form
        )
        assert response.status_code == 404, response.text
        assert "Globex" not in response.text
    standing = _standing(manual_client, world)
    assert standing["PaymentStatus"] == "Open"
    assert standing["AmountDue"] == Decimal("1.50")


def test_another_sellers_session_cannot_download_the_invoice_pdf(
    manual_client: TestClient, world: ConsoleWorld
) -> None:
    sign_in(manual_client, new_seller(manual_client, "Beta Cloud"))
    response = manual_client.get(f"/console/invoices/{world.invoice['Id']}/pdf")
    assert response.status_code == 404
    assert not response.content.startswith(b"%PDF")


def _credit_the_whole_invoice(client: TestClient, world: ConsoleWorld, token: str) -> None:
    form = {"csrf_token": token, "line": "all", "reason": "Goodwill", "confirmed": "yes"}
    assert _post(client, world, "credit", **form).status_code == 303


def test_credit_notes_are_listed_newest_first_and_one_shows_its_lines_and_pdf(
    manual_client: TestClient, world: ConsoleWorld, token: str
) -> None:
    _credit_the_whole_invoice(manual_client, world, token)
    listed = manual_client.get("/console/creditnotes")
    assert listed.status_code == 200, listed.text
    assert "Globex" in _text(listed.text)
    assert "Goodwill €1.50" in _text(listed.text)
    assert "1 credit notes" in _text(listed.text)
    link = re.search(r'href="(/console/creditnotes/[0-9a-f]+)"', listed.text)
    assert link, listed.text
    text = _text(manual_client.get(link.group(1)).text)
    assert f"Invoice {world.invoice['InvoiceNumber']}" in text
    assert "1 Storage €1.50" in text
    assert "Download the PDF" in text
    dated = manual_client.get("/console/creditnotes", params={"from": "2026-02-16"}).text
    assert "0 credit notes" in _text(dated)
    customer = manual_client.get(f"/console/customers/{world.contract.customer_id}").text
    of_customer = re.search(r'href="(/console/creditnotes\?customer=[0-9a-f]+)"', customer)
    assert of_customer, customer
    assert "1 credit notes" in _text(manual_client.get(of_customer.group(1)).text)


def test_another_sellers_session_cannot_open_a_credit_note_or_its_pdf(
    manual_client: TestClient, world: ConsoleWorld, token: str
) -> None:
    _credit_the_whole_invoice(manual_client, world, token)
    link = re.search(
        r'href="(/console/creditnotes/[0-9a-f]+)"', manual_client.get("/console/creditnotes").text
    )
    assert link
    sign_in(manual_client, new_seller(manual_client, "Beta Cloud"))
    for path in (link.group(1), f"{link.group(1)}/pdf"):
        response = manual_client.get(path)
        assert response.status_code == 404, path
        assert "Globex" not in response.text
    assert "Globex" not in manual_client.get("/console/creditnotes").text


def test_a_contract_shows_its_phases_after_a_plan_change(manual_client: TestClient) -> None:
    catalog = new_catalog(manual_client, "Storage")
    small = new_variant(manual_client, catalog, Metered(), name="Small")
    large = new_variant(manual_client, catalog, Metered(), name="Large")
    contract = new_contract(manual_client, catalog, small)
    sign_in(manual_client, catalog.seller)
    page = f"/console/contracts/{contract.contract_id}"
    assert "Small Jan 1, 2026 open-ended" in _text(manual_client.get(page).text)
    ordered(manual_client, contract, {"PlanVariantId": large}, ChangeDate="2026-01-20T00:00:00Z")
    text = _text(manual_client.get(page).text)
    assert "Small Jan 1, 2026 Jan 20, 2026 Large Jan 20, 2026 open-ended" in text


@pytest.mark.parametrize(
    "amount", ["1e100000", "1e-100000", "0.001", "-1", "NaN", "Infinity", "9" * 60]
)
@pytest.mark.parametrize("action", ["credit", "payment"])
def test_an_amount_beyond_what_money_can_be_is_answered_on_the_page_not_a_server_error(
    manual_client: TestClient, world: ConsoleWorld, token: str, action: str, amount: str
) -> None:
    form = {"csrf_token": token, "line": "1", "amount": amount, "reason": "r", "reference": "r"}
    for confirmed in ("", "yes"):
        response = _post(manual_client, world, action, confirmed=confirmed, **form)
        assert response.status_code in {409, 422}, (amount, response.text)
        assert 'role="alert"' in response.text
    assert _standing(manual_client, world)["AmountDue"] == Decimal("1.50")

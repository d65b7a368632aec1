"""SPEC §14, the console: sessions, CSRF, and what each page shows (numbers written out).

The world (tests/console_factories.py): Globex on storage at 0.10 EUR per GB with 10 GB
free a month; 25 GB in January billed on 1 February as 1.50 EUR (+ 0 % tax), then
7 GB on 3 February; the clock stands at 15 February 2026."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from arrears.api.app import create_app
from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.store.database import Database
from arrears.worker.runner import Worker
from tests.billing_factories import (
    Metered,
    bill_interim_at,
    new_billing_seller,
    new_priced_contract,
    per_unit,
    post_usage,
)
from tests.console_factories import ConsoleWorld, console_world, csrf_of, sign_in
from tests.factories import ADMIN, new_seller

PAGES = ("/console", "/console/customers", "/console/invoices", "/console/submissions")


@pytest.fixture
def world(manual_client: TestClient, database: Database, clock: TestClock) -> ConsoleWorld:
    world = console_world(manual_client)
    Worker(database, clock).run_until_idle()  # fails the bulk submission
    return world


def _text(html: str) -> str:
    """The page's words, tags and runs of white space removed (numbers stay whole)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("\xa0", " ")


# -- sessions ---------------------------------------------------------------------------


def test_every_page_without_a_session_redirects_to_sign_in(client: TestClient) -> None:
    for page in (*PAGES, "/console/customers/x", "/console/invoices/x"):
        response = client.get(page, follow_redirects=False)
        assert response.status_code == 303, page
        assert response.headers["location"].startswith("/console/sign-in?next=%2Fconsole")


def test_signing_in_sets_an_httponly_strict_expiring_cookie_without_the_key(
    client: TestClient,
) -> None:
    seller = new_seller(client)
    form = client.get("/console/sign-in")
    response = client.post(
        "/console/sign-in",
        data={"api_key": seller.api_key, "csrf_token": csrf_of(form.text), "next": "/console"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("arrears_console=")
    )
    flags = cookie.lower()
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "max-age=28800" in flags  # eight hours
    assert "path=/console" in flags
    assert "secure" not in flags  # served over plain http
    secret = seller.api_key.split("_")[2]
    assert secret not in cookie
    assert seller.api_key not in cookie


def test_the_cookie_is_secure_when_served_over_https(
    settings: Settings, database: Database, clock: TestClock
) -> None:
    app = create_app(settings, database=database, clock=clock)
    with TestClient(app, base_url="https://console.example") as https:
        seller = new_seller(https)
        form = https.get("/console/sign-in")
        response = https.post(
            "/console/sign-in",
            data={"api_key": seller.api_key, "csrf_token": csrf_of(form.text)},
            follow_redirects=False,
        )
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("arrears_console=")
    )
    assert "secure" in cookie.lower()


def test_a_wrong_key_is_refused_with_the_form_again(client: TestClient) -> None:
    seller = new_seller(client)
    form = client.get("/console/sign-in")
    response = client.post(
        "/console/sign-in",
        data={"api_key": seller.api_key[:-4] + "0000", "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert "The API key is not valid." in response.text
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_a_sign_in_without_its_csrf_token_is_refused(client: TestClient) -> None:
    seller = new_seller(client)
    client.get("/console/sign-in")
    response = client.post(
        "/console/sign-in", data={"api_key": seller.api_key}, follow_redirects=False
    )
    assert response.status_code == 403
    assert "arrears_console=" not in " ".join(response.headers.get_list("set-cookie"))


def test_signing_out_without_the_csrf_token_is_refused_and_with_it_ends_the_session(
    client: TestClient,
) -> None:
    seller = new_seller(client)
    token = sign_in(client, seller)
    refused = client.post("/console/sign-out", data={}, follow_redirects=False)
    assert refused.status_code == 403
    wrong = client.post("/console/sign-out", data={"csrf_token": "0" * 64}, follow_redirects=False)
    assert wrong.status_code == 403
    assert client.get("/console").status_code == 200
    out = client.post("/console/sign-out", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/console/sign-in"
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_a_revoked_keys_session_ends_at_the_next_request(client: TestClient) -> None:
    seller = new_seller(client)
    sign_in(client, seller)
    revoked = client.delete(
        f"/admin/sellers/{seller.seller_id}/keys/{seller.key_id}", headers=ADMIN
    )
    assert revoked.status_code == 204, revoked.text
    response = client.get("/console/customers", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/sign-in")


def test_a_forged_cookie_opens_nothing(client: TestClient) -> None:
    seller = new_seller(client)
    sign_in(client, seller)
    key_id, stamp, nonce, signature = client.cookies["arrears_console"].split(".")
    later = str(int(stamp) + 86_400 * 365)
    client.cookies.clear()
    client.cookies.set("arrears_console", f"{key_id}.{later}.{nonce}.{signature}")
    assert client.get("/console", follow_redirects=False).status_code == 303


# -- what each page shows ---------------------------------------------------------------


@pytest.fixture
def signed_in(manual_client: TestClient, world: ConsoleWorld) -> TestClient:
    sign_in(manual_client, world.seller)
    return manual_client


def test_the_overview_shows_revenue_per_month_usage_per_component_and_failing_tasks(
    signed_in: TestClient, world: ConsoleWorld
) -> None:
    html = signed_in.get("/console", headers={"Accept-Language": "en-US"}).text
    text = _text(html)
    assert "Feb 2026" in text
    assert "€1.50" in text  # February's billed revenue, in the table under the chart
    assert "Storage: 32 GB" in text  # 25 + 7 over the last 90 days
    assert "<svg" in html
    assert world.task_id in text


def test_numbers_and_dates_follow_the_browsers_language(
    signed_in: TestClient, world: ConsoleWorld
) -> None:
    text = _text(
        signed_in.get(
            f"/console/invoices/{world.invoice['Id']}",
            headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"},
        ).text
    )
    assert "1,50 €" in text
    assert "01.02.2026" in text
    assert (
        '<html lang="de-DE">'
        in signed_in.get("/console", headers={"Accept-Language": "de-DE"}).text
    )


def test_customers_are_found_by_name_email_and_external_id_in_pages(
    signed_in: TestClient, world: ConsoleWorld
) -> None:
    for search in ("globex", "GLOB", "nobody"):
        text = _text(signed_in.get("/console/customers", params={"q": search}).text)
        assert ("Globex" in text) == (search != "nobody"), search
    for number in range(30):
        signed_in.post(
            "/api/v1/customers",
            json={
                "CompanyName": f"Initech {number:02}",
                "EmailAddress": f"ap{number}@initech.test",
                "ExternalCustomerId": f"crm-{number}",
            },
            headers=world.seller.headers,
        )
    assert "crm-17" in signed_in.get("/console/customers", params={"q": "crm-17"}).text
    assert "Initech 05" in signed_in.get("/console/customers", params={"q": "ap5@"}).text
    first = _text(signed_in.get("/console/customers", params={"sort": "name"}).text)
    assert "31 customers, page 1 of 2" in first
    assert "Globex" in first
    assert "Initech 23" in first
    assert "Initech 24" not in first
    second = _text(signed_in.get("/console/customers", params={"sort": "name", "page": 2}).text)
    assert "Initech 24" in second
    assert "Initech 29" in second
    assert "Globex" not in second
    reversed_ = _text(signed_in.get("/console/customers", params={"sort": "-name"}).text)
    assert reversed_.index("Initech 29") < reversed_.index("Initech 28")


def test_a_customer_shows_its_contracts_and_invoices(
    signed_in: TestClient, world: ConsoleWorld
) -> None:
    text = _text(signed_in.get(f"/console/customers/{world.contract.customer_id}").text)
    assert world.contract.contract_id in text
    assert world.invoice["InvoiceNumber"] in text
    assert "€1.50" in text


def test_a_contract_shows_daily_usage_the_preview_with_free_quota_left_and_invoices(
    signed_in: TestClient, world: ConsoleWorld
) -> None:
    html = signed_in.get(f"/console/contracts/{world.contract.contract_id}").text
    text = _text(html)
    assert "Storage: 32 GB" in text
    assert "Storage per day, in GB" in html
    assert "<rect" in html
    # February: 7 GB used of the 10 GB free, 3 GB left; nothing billable yet.
    assert "Storage 10 7 3" in text
    assert world.invoice["InvoiceNumber"] in text


def test_invoices_filter_and_an_invoice_shows_its_lines_down_to_usage_entries(
    signed_in: TestClient, world: ConsoleWorld
) -> None:
    listed = _text(signed_in.get("/console/invoices", params={"kind": "Regular"}).text)
    assert world.invoice["InvoiceNumber"] in listed
    assert "1 invoices" in listed
    assert "0 invoices" in _text(
        signed_in.get("/console/invoices", params={"kind": "Interim"}).text
    )
    dated = signed_in.get("/console/invoices", params={"from": "2026-02-02"}).text
    assert "0 invoices" in _text(dated)
    text = _text(signed_in.get(f"/console/invoices/{world.invoice['Id']}").text)
    assert "Quantity 25 Free 10 Billable 15" in text
    assert "€1.50" in text
    assert "january-backup" in text  # the usage entry the line billed


def test_a_failed_submission_shows_its_errors_and_downloads_them_as_csv(
    signed_in: TestClient, world: ConsoleWorld
) -> None:
    listed = _text(signed_in.get("/console/submissions", params={"status": "Failed"}).text)
    assert world.task_id in listed
    assert "1 submissions" in listed
    text = _text(signed_in.get(f"/console/submissions/{world.task_id}").text)
    assert "Failed" in text
    assert "quantity" in text
    csv = signed_in.get(f"/console/submissions/{world.task_id}/failed-records.csv")
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    lines = csv.text.splitlines()
    assert lines[0] == "index,subscriptionId,field,code,message"
    assert lines[1].startswith(f"0,{world.contract.contract_id},quantity,")


def test_another_sellers_session_gets_404_for_every_object_of_the_first(
    manual_client: TestClient, world: ConsoleWorld
) -> None:
    other = new_seller(manual_client, "Beta Cloud")
    sign_in(manual_client, other)
    for path in (
        f"/console/customers/{world.contract.customer_id}",
        f"/console/contracts/{world.contract.contract_id}",
        f"/console/invoices/{world.invoice['Id']}",
        f"/console/submissions/{world.task_id}",
        f"/console/submissions/{world.task_id}/failed-records.csv",
    ):
        response = manual_client.get(path)
        assert response.status_code == 404, path
        assert "Globex" not in response.text
    for page in PAGES:
        text = manual_client.get(page).text
        assert "Globex" not in text, page
        assert world.task_id not in text, page


def test_nul_bytes_in_ids_searches_and_keys_are_answered_not_a_server_error(
    client: TestClient,
) -> None:
    sign_in(client, new_seller(client))
    for url in ("/console/customers/%00", "/console/invoices/a%00b", "/console/submissions/%00"):
        assert client.get(url).status_code == 404, url
    for url in ("/console/customers?q=%00", "/console/invoices?customer=%00&number=a%00"):
        assert client.get(url).status_code == 200, url
    client.cookies.clear()
    form = client.get("/console/sign-in")
    refused = client.post(
        "/console/sign-in",
        data={"api_key": "arr_\x00_secret", "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert refused.status_code == 401


def test_invoices_sorted_by_total_follow_the_amounts_not_their_text(
    manual_client: TestClient,
) -> None:
    # Totals 9.00, 10.00 and 100.00 EUR: as text "10.000000" < "100.000000" < "9.000000",
    # which is how SQLite would order its exact decimal text.
    seller = new_billing_seller(manual_client, "Sorted")
    contract = new_priced_contract(manual_client, seller, Metered(pricing=per_unit("1")))
    for day, quantity in ((2, "10"), (4, "100"), (6, "9")):
        post_usage(manual_client, contract, quantity, f"2026-01-0{day}T00:00:00Z")
        bill_interim_at(manual_client, contract, f"2026-01-0{day + 1}T00:00:00Z")
    sign_in(manual_client, seller)
    text = _text(manual_client.get("/console/invoices", params={"sort": "total"}).text)
    assert text.index("€9.00") < text.index("€10.00") < text.index("€100.00")

"""SPEC §14 in a real browser: Debian's Chromium, driven by Selenium, against a real
`arrears serve` process on SQLite.

An operator signs in, finds a customer, opens a contract and sees its chart, opens an
invoice and a failed bulk submission, downloads an invoice's PDF, voids it after the
confirmation page and sees it voided and reopened, sends a failing webhook delivery
again with "Retry now", and creates a webhook endpoint (a refused URL first, its message
beside the field) and sees its secret once and the endpoint listed; every page loads
without a browser console error, the keyboard reaches the first link, and a phone-width
screen needs no sideways scroll.
Screenshots go to tests/browser/artifacts/ (ignored by git; docs/images/ holds copies).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser.chromium import ARTIFACTS, chromium, needs_chromium
from tests.conftest import ADMIN_TOKEN
from tests.console_factories import ConsoleWorld, console_world
from tests.e2e.served import Launch, Served, served
from tests.webhook_receiver import receiving

WEBHOOKS_KEY = Fernet.generate_key().decode()

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("console")
    with served(
        f"sqlite:///{directory / 'arrears.db'}",
        directory / "serve.log",
        launch=Launch(
            env={
                "ARREARS_ADMIN_TOKEN": ADMIN_TOKEN,
                # The test's webhook receiver listens on loopback.
                "ARREARS_WEBHOOKS_ALLOW_PRIVATE": "true",
                "ARREARS_WEBHOOKS_SECRETS_KEY": WEBHOOKS_KEY,
            }
        ),
    ) as running:
        yield running


@pytest.fixture(scope="module")
def world(server: Served) -> ConsoleWorld:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        world = console_world(client)
        # The embedded worker fails the submission (its one record has quantity -1).
        task_path = f"/api/sellers/{world.seller.seller_id}/services/bulkconsumptions"
        deadline = time.monotonic() + 60
        task_url = f"{task_path}/{world.task_id}"
        while client.get(task_url, headers=world.seller.headers).json()["message"] != "Failed":
            assert time.monotonic() < deadline, "the worker did not fail the submission"
            time.sleep(0.1)
    return world


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    with chromium(
        tmp_path_factory.mktemp("chromium"), "--lang=en-US", "--window-size=1280,1000"
    ) as driver:
        driver.implicitly_wait(5)
        yield driver


def _errors(browser: WebDriver) -> list[str]:
    """Browser console messages of level SEVERE since the last call."""
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def _shot(browser: WebDriver, name: str, status: int = 200) -> None:
    errors = _errors(browser)
    if status != 200:  # Chromium reports the page's own status; nothing else may fail
        own = f"{browser.current_url} - Failed to load resource: the server responded with a "
        own += f"status of {status}"
        errors = [e for e in errors if not e.startswith(own)]
    assert errors == [], f"console errors on {browser.current_url}"
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _arrive(browser: WebDriver, heading: str) -> None:
    """Wait for the page a click or Enter navigates to: its h1 reads `heading` (the old
    page's elements stay readable until the new one replaces them; an h1 found on the old
    page and read after the swap is stale: looked up again)."""
    WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda b: b.find_element(By.TAG_NAME, "h1").text == heading
    )


def _signed_in(browser: WebDriver, server: Served, world: ConsoleWorld) -> None:
    """Sign in unless a test before (in whatever order they run) already has."""
    browser.get(f"{server.url}/console")
    if browser.current_url.startswith(f"{server.url}/console/sign-in"):
        browser.find_element(By.ID, "api_key").send_keys(world.seller.api_key, Keys.ENTER)


def test_an_operator_signs_in_finds_a_customer_and_opens_contract_and_invoice(
    browser: WebDriver, server: Served, world: ConsoleWorld
) -> None:
    browser.get(f"{server.url}/console/sign-in")
    browser.delete_all_cookies()
    browser.get(f"{server.url}/console")
    assert browser.current_url.startswith(f"{server.url}/console/sign-in")
    _shot(browser, "sign-in")
    browser.find_element(By.ID, "api_key").send_keys(world.seller.api_key, Keys.ENTER)
    _arrive(browser, "Overview")
    assert "Storage: 32 GB" in browser.find_element(By.ID, "main").text
    _shot(browser, "overview")

    browser.find_element(By.LINK_TEXT, "Customers").click()
    browser.find_element(By.ID, "q").send_keys("glob", Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda b: "q=glob" in b.current_url)
    _shot(browser, "customers")
    browser.find_element(By.LINK_TEXT, "Globex").click()
    _arrive(browser, "Globex")
    _shot(browser, "customer")

    browser.find_element(By.LINK_TEXT, world.contract.contract_id).click()
    chart = browser.find_element(By.CSS_SELECTOR, "figure.chart svg")
    assert chart.size["height"] > 50
    assert len(chart.find_elements(By.CSS_SELECTOR, "rect.bar")) == 91  # one per day
    _shot(browser, "contract")

    browser.find_element(By.LINK_TEXT, world.invoice["InvoiceNumber"]).click()
    _arrive(browser, f"Invoice {world.invoice['InvoiceNumber']}")
    browser.find_element(By.CSS_SELECTOR, "section.line summary").click()
    assert "january-backup" in browser.find_element(By.CSS_SELECTOR, "section.line").text
    _shot(browser, "invoice")


def test_the_other_pages_load_without_console_errors(
    browser: WebDriver, server: Served, world: ConsoleWorld
) -> None:
    for path, name, status in (
        ("/console/invoices", "invoices", 200),
        ("/console/creditnotes", "credit-notes", 200),
        ("/console/submissions", "submissions", 200),
        (f"/console/submissions/{world.task_id}", "submission", 200),
        ("/console/customers/not-a-customer", "not-found", 404),
    ):
        _signed_in(browser, server, world)
        browser.get(f"{server.url}{path}")
        assert browser.find_element(By.TAG_NAME, "h1").text
        _shot(browser, name, status)


def test_the_keyboard_reaches_the_skip_link_first(
    browser: WebDriver, server: Served, world: ConsoleWorld
) -> None:
    _signed_in(browser, server, world)
    browser.get(f"{server.url}/console/customers")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"


def test_a_phone_width_screen_needs_no_sideways_scrolling(
    browser: WebDriver, server: Served, world: ConsoleWorld
) -> None:
    _signed_in(browser, server, world)
    browser.set_window_size(390, 844)
    try:
        for path in (
            "/console",
            f"/console/contracts/{world.contract.contract_id}",
            "/console/webhooks/new",
        ):
            browser.get(f"{server.url}{path}")
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, path
        _shot(browser, "contract-phone")
    finally:
        browser.set_window_size(1280, 1000)


def test_an_operator_downloads_an_invoice_pdf_voids_it_and_sees_it_reopened(
    browser: WebDriver, server: Served, world: ConsoleWorld, tmp_path: Path
) -> None:
    # Headless Chromium saves a download only where it is told to.
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    _signed_in(browser, server, world)
    number = world.invoice["InvoiceNumber"]
    browser.get(f"{server.url}/console/invoices/{world.invoice['Id']}")
    _arrive(browser, f"Invoice {number}")
    browser.find_element(By.LINK_TEXT, "Download the PDF").click()
    pdf = tmp_path / f"{number}.pdf"
    WebDriverWait(browser, 30).until(lambda _: pdf.exists() and pdf.stat().st_size > 0)
    assert pdf.read_bytes().startswith(b"%PDF")

    browser.find_element(By.ID, "void-reason").send_keys("Wrong price")
    browser.find_element(By.ID, "void").click()
    _arrive(browser, f"Void: invoice {number}?")
    _shot(browser, "void-confirm")
    browser.find_element(By.ID, "confirm").click()
    _arrive(browser, f"Invoice {number}")
    assert browser.find_element(By.ID, "payment-status").text == "Voided"
    assert "period is reopened" in browser.find_element(By.ID, "voided").text
    _shot(browser, "invoice-voided")


def _statuses(server: Served, world: ConsoleWorld, webhook_id: str) -> list[str]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = client.get(
            f"/api/v1/webhooks/{webhook_id}/deliveries", headers=world.seller.headers
        )
    assert response.status_code == 200, response.text
    return [d["Status"] for d in response.json()]


def test_an_operator_retries_a_failing_webhook_delivery(
    browser: WebDriver, server: Served, world: ConsoleWorld
) -> None:
    with receiving() as receiver:
        # The served clock stands still (the world set it), so the failed event's next
        # attempt never falls due by itself: only "Retry now" sends it again.
        receiver.answer(500)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            created = client.post(
                "/api/v1/webhooks",
                json={"Url": receiver.url, "Events": ["creditnote.issued"]},
                headers=world.seller.headers,
            )
            assert created.status_code == 201, created.text
            webhook_id = created.json()["Id"]
            sent = client.post(f"/api/v1/webhooks/{webhook_id}/test", headers=world.seller.headers)
            assert sent.status_code == 202, sent.text
        deadline = time.monotonic() + 60
        while "Failed" not in _statuses(server, world, webhook_id):
            assert time.monotonic() < deadline, "the worker did not fail the delivery"
            time.sleep(0.2)

        _signed_in(browser, server, world)
        browser.get(f"{server.url}/console/webhooks")
        _arrive(browser, "Webhooks")
        _shot(browser, "webhooks")
        browser.find_element(By.LINK_TEXT, receiver.url).click()
        _arrive(browser, f"Webhook {receiver.url}")
        assert "Failing deliveries\n1" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
        _shot(browser, "webhook")
        browser.find_element(By.XPATH, "//tr[contains(., 'Failed')]//button").click()
        WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda b: "The delivery is due now" in b.find_element(By.ID, "main").text
        )
        deadline = time.monotonic() + 30
        while "Succeeded" not in _statuses(server, world, webhook_id):
            assert time.monotonic() < deadline, "the retried delivery was not sent"
            time.sleep(0.2)
        browser.refresh()
        _arrive(browser, f"Webhook {receiver.url}")
        assert "Succeeded" in browser.find_element(By.TAG_NAME, "table").text
        _shot(browser, "webhook-retried")


def test_an_operator_creates_a_webhook_endpoint_and_sees_it_listed(
    browser: WebDriver, server: Served, world: ConsoleWorld
) -> None:
    _signed_in(browser, server, world)
    browser.get(f"{server.url}/console/webhooks")
    browser.find_element(By.LINK_TEXT, "New endpoint").click()
    _arrive(browser, "New webhook endpoint")
    url = browser.find_element(By.ID, "url")
    url.send_keys("ftp://hooks.example.com/accounting")
    # By keyboard: from the URL, Tab goes to "every event", then each event in turn;
    # Space ticks invoice.finalized, the third.
    url.send_keys(Keys.TAB, Keys.TAB, Keys.TAB, Keys.TAB, Keys.SPACE)
    assert browser.switch_to.active_element.get_attribute("value") == "invoice.finalized"
    browser.find_element(By.ID, "description").send_keys("Accounting", Keys.ENTER)
    WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda b: b.find_elements(By.ID, "problems")
    )
    assert "http or https" in browser.find_element(By.ID, "url-error-1").text
    assert browser.find_element(By.CSS_SELECTOR, "[value='invoice.finalized']").is_selected()
    assert browser.find_element(By.ID, "description").get_attribute("value") == "Accounting"
    _shot(browser, "webhook-form", 422)

    url = browser.find_element(By.ID, "url")
    url.clear()
    url.send_keys("https://hooks.example.com/accounting", Keys.ENTER)
    _arrive(browser, "Signing secret of https://hooks.example.com/accounting")
    assert browser.find_element(By.ID, "secret").text.startswith("whsec_")
    _shot(browser, "webhook-created")

    browser.find_element(By.LINK_TEXT, "Webhooks").click()
    _arrive(browser, "Webhooks")
    row = browser.find_element(By.XPATH, "//tr[contains(., 'hooks.example.com/accounting')]")
    assert "Accounting" in row.text
    assert "invoice.finalized" in row.text
    assert "Enabled" in row.text
    _shot(browser, "webhooks-created")

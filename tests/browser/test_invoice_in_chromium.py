"""SPEC §12 in a real browser: an invoice's HTML page in Debian's headless Chromium,
with no console error; its screenshot is an artifact of the test run
(tests/browser/artifacts/invoice-de-DE.png; docs/images/invoice.png is a copy)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from arrears.documents.html import render_html
from tests.document_factories import invoice_document

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed "
    "(apt-get install -y chromium chromium-driver; .ci/run installs them)",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1000,1250",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def test_a_german_invoice_page_renders_in_chromium_without_errors(
    browser: WebDriver, tmp_path: Path
) -> None:
    page = tmp_path / "invoice.html"
    page.write_text(render_html(invoice_document(locale="de-DE")), encoding="utf-8")
    browser.get(page.as_uri())
    assert browser.find_element(By.TAG_NAME, "h1").text == "Rechnung ZW-2026-000042"
    rows = browser.find_elements(By.CSS_SELECTOR, "table.lines tbody tr.line")
    assert len(rows) == 7
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    browser.save_screenshot(str(ARTIFACTS / "invoice-de-DE.png"))

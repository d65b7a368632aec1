"""SPEC §12 in a real browser: an invoice's HTML page in Debian's headless Chromium,
with no console error; its screenshot is an artifact of the test run
(tests/browser/artifacts/invoice-de-DE.png; docs/images/invoice.png is a copy)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from arrears.documents.html import render_html
from tests.browser.chromium import ARTIFACTS, chromium, needs_chromium
from tests.document_factories import invoice_document

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    with chromium(tmp_path_factory.mktemp("chromium"), "--window-size=1000,1250") as driver:
        yield driver


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

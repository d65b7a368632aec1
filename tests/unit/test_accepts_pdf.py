"""SPEC §12: `Accept: application/pdf` on an invoice's JSON URL answers its PDF; JSON
stays the answer whenever the client prefers it or accepts anything."""

from __future__ import annotations

import pytest

from arrears.api.routers.documents import accepts_pdf


@pytest.mark.parametrize(
    "accept",
    [
        "application/pdf",
        "Application/PDF",
        "application/pdf, application/json",
        "text/html, application/pdf;q=0.9",
    ],
)
def test_a_client_that_names_pdf_first_gets_the_pdf(accept: str) -> None:
    assert accepts_pdf(accept)


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        "*/*",
        "application/json",
        "application/json, application/pdf",
        "application/*",
        "application/pdf;q=0, application/json",
        "*/*, application/pdf",
    ],
)
def test_a_client_that_prefers_json_or_accepts_anything_gets_json(accept: str | None) -> None:
    assert not accepts_pdf(accept)

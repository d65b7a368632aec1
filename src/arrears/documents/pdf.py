"""The document as PDF, laid out by Typst from the same `DocumentView` as the HTML page.

Typst (the `typst` PyPI package: the compiler itself, no system libraries) was chosen
over an HTML-to-PDF engine for speed and reproducibility: WeasyPrint needed 4-5 s of CPU
for a 1,000-line invoice here, Typst about half a second, and Typst embeds its own
fallback fonts, writes PDF/A-3b for Factur-X, and given the document's date as its
timestamp writes the same bytes every time.
"""

from __future__ import annotations

import functools
import json
import threading
from datetime import UTC, datetime, time
from pathlib import Path

import typst

from arrears.documents.model import InvoiceDocument
from arrears.documents.view import document_view

__all__ = ["render_pdf"]

_TEMPLATE = (Path(__file__).parent / "templates" / "document.typ").read_bytes()
_LOGO_FORMATS = {"image/png": "png", "image/svg+xml": "svg"}
# A compiler keeps its font book; it is not to be shared by two threads at once.
_LOCK = threading.Lock()


@functools.cache
def _compiler() -> typst.Compiler:
    return typst.Compiler()


def render_pdf(document: InvoiceDocument, *, pdf_a: bool = False) -> bytes:
    """The PDF of `document` (PDF/A-3b with `pdf_a`, as Factur-X wants it). The same
    document always gives the same bytes: its timestamp is the document's date."""
    data = document_view(document).as_data()
    logo = document.seller.logo
    data["logo"] = None if logo is None else list(logo.data)
    data["logo_format"] = None if logo is None else _LOGO_FORMATS.get(logo.media_type, "png")
    stamp = datetime.combine(document.issue_date, time(0), tzinfo=UTC)
    with _LOCK:
        pdf = _compiler().compile(
            input=_TEMPLATE,
            format="pdf",
            sys_inputs={"view": json.dumps(data, ensure_ascii=False)},
            timestamp=stamp,
            pdf_standards=["a-3b"] if pdf_a else [],
            # Tags (a structure element per table cell) would make a long invoice a
            # PDF of tens of thousands of objects, for factur-x to copy one by one.
            pdf_tags=False,
        )
    assert isinstance(pdf, bytes)  # noqa: S101 (one PDF, not pages)
    return pdf

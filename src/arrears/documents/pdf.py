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
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

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
    document always gives the same bytes: its timestamp is the document's date.

    Text is shown without the characters nothing can show (unassigned, private use,
    control). PDF/A also refuses a character none of the fonts has; such a document is
    made again with those texts in the scripts the fonts cover (others read `?`): the
    Factur-X XML inside keeps every character."""
    data = _displayable(document_view(document).as_data(), _assigned)
    logo = document.seller.logo
    data["logo"] = None if logo is None else list(logo.data)
    data["logo_format"] = None if logo is None else _LOGO_FORMATS.get(logo.media_type, "png")
    stamp = datetime.combine(document.issue_date, time(0), tzinfo=UTC)
    try:
        return _compile(data, stamp, pdf_a=pdf_a)
    except typst.TypstError as error:
        if not pdf_a or "could not be displayed" not in str(error):
            raise
    return _compile(_displayable(data, _in_fonts), stamp, pdf_a=pdf_a)


def _compile(data: dict[str, Any], stamp: datetime, *, pdf_a: bool) -> bytes:
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


def _assigned(character: str) -> str:
    category = unicodedata.category(character)
    if category in {"Cn", "Co", "Cs"} or (category == "Cc" and character not in "\t\n"):
        return ""
    return character


def _in_fonts(character: str) -> str:
    # Latin, Greek, Cyrillic, punctuation, currency and letter-like symbols: DejaVu's.
    code = ord(character)
    covered = code < 0x0530 or 0x1E00 <= code < 0x2200 or character in "\u20ac\ufffd"
    return character if covered else "?"


def _displayable(value: Any, keep: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        if value.isascii() and value.isprintable():  # nearly every text: nothing to do
            return value
        return "".join(keep(character) for character in value)
    if isinstance(value, dict):
        return {key: _displayable(item, keep) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_displayable(item, keep) for item in value]
    return value

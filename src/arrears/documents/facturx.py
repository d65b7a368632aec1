"""Factur-X / ZUGFeRD: the document's PDF/A-3 with its CII XML embedded (EN 16931
profile), made by the `factur-x` library, which also checks the XML against the CII
D16B schema before it embeds it."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time

from facturx import facturx as library
from facturx import generate_from_binary, get_xml_from_pdf

from arrears.documents.cii import cii_xml
from arrears.documents.model import InvoiceDocument
from arrears.documents.pdf import render_pdf

__all__ = ["embedded_xml", "facturx_pdf"]

# factur-x stamps "now" into the PDF's dates and its XMP packet. A document is made
# from the issued invoice alone, so for the call those two clocks read the document's
# date instead (module attributes, hence the lock around the call).
_LOCK = threading.Lock()


@contextlib.contextmanager
def _dated(day: date) -> Iterator[None]:
    stamp = datetime.combine(day, time(0), tzinfo=UTC)
    saved = (library._get_pdf_timestamp, library._get_metadata_timestamp)
    library._get_pdf_timestamp = lambda date=None: saved[0](date or stamp)
    library._get_metadata_timestamp = lambda: stamp.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    try:
        yield
    finally:
        library._get_pdf_timestamp, library._get_metadata_timestamp = saved


def facturx_pdf(document: InvoiceDocument) -> bytes:
    """The Factur-X PDF of `document`; `MissingDocumentData` as for `cii_xml`."""
    xml = cii_xml(document)
    pdf = render_pdf(document, pdf_a=True)
    # The library logs every step at INFO; only its warnings are worth keeping.
    logging.getLogger("factur-x").setLevel(logging.WARNING)
    with _LOCK, _dated(document.issue_date):
        made: bytes = generate_from_binary(
            pdf,
            xml,
            flavor="factur-x",
            level="en16931",
            check_xsd=True,
            pdf_metadata={
                "author": document.seller.name,
                "keywords": "Factur-X",
                "title": document.number,
                "subject": document.number,
            },
            lang=document.locale,
            xmp_compression=False,
        )
    return made


def embedded_xml(pdf: bytes) -> bytes:
    """The `factur-x.xml` attachment of a Factur-X PDF (for tests and tools)."""
    xml: bytes = get_xml_from_pdf(pdf, check_xsd=False)[1]
    return xml

"""Contract usage API, invoice documents and e-invoices (SPEC §12): the PDF, the HTML
page and the EN 16931 e-invoice of an issued invoice or credit note.

The invoice is read in a read-only transaction; the document is made after it ends,
so no transaction waits on a layout.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from arrears.api.auth import SellerId
from arrears.api.context import AppContext, Context
from arrears.api.encoding import ArrearsRoute
from arrears.api.problems import problem_responses
from arrears.documents.cii import cii_xml
from arrears.documents.facturx import facturx_pdf
from arrears.documents.html import render_html
from arrears.documents.model import InvoiceDocument
from arrears.documents.pdf import render_pdf
from arrears.documents.ubl import ubl_xml
from arrears.services.documents import credit_note_document, invoice_document

router = APIRouter(prefix="/api/v1", route_class=ArrearsRoute, tags=["invoices"])

InvoiceIdPath = Annotated[str, Path(alias="invoiceId")]
CreditNoteIdPath = Annotated[str, Path(alias="creditNoteId")]
PDF = "application/pdf"
BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
# The page is self-contained (its style inline, its logo a data: URI) and runs nothing:
# served from the API's origin, it is allowed nothing else.
_PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
MISSING_PARTY_DATA = {
    409: "The seller's profile or the customer lacks what EN 16931 requires (a postal "
    "address, the seller's VAT id): the problem's `detail` names each missing field."
}


EINVOICE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The EN 16931 e-invoice: XML (cii, ubl) or a PDF/A-3 (facturx).",
        "content": {"application/xml": BINARY, PDF: BINARY},
    },
    **problem_responses(MISSING_PARTY_DATA),
}


class Syntax(enum.StrEnum):
    """`cii`: UN/CEFACT CII (Factur-X / ZUGFeRD EN 16931); `ubl`: UBL 2.1 (Peppol BIS
    Billing 3.0); `facturx`: a PDF/A-3 with the CII embedded."""

    CII = "cii"
    UBL = "ubl"
    FACTURX = "facturx"


def _content(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {media_type: BINARY}}}


def _document(context: AppContext, seller_id: str, invoice_id: str) -> InvoiceDocument:
    with context.database.unit_of_work(seller_id, "read") as work:
        return invoice_document(work, invoice_id)


def accepts_pdf(accept: str | None) -> bool:
    """True when an `Accept` header prefers a PDF to JSON: it names `application/pdf`
    (not at q=0) before any `application/json`."""
    if not accept:
        return False
    for media_range in accept.split(","):
        media_type, *parameters = (part.strip() for part in media_range.split(";"))
        if any(p.replace(" ", "") in {"q=0", "q=0.0", "q=0.00", "q=0.000"} for p in parameters):
            continue
        if media_type.lower() == PDF:
            return True
        if media_type.lower() in {"application/json", "application/*", "*/*"}:
            return False
    return False


def pdf_response(document: InvoiceDocument) -> Response:
    """The PDF of `document`, shown inline and saved under the document's number."""
    return Response(
        render_pdf(document),
        media_type=PDF,
        headers={"Content-Disposition": f'inline; filename="{document.number}.pdf"'},
    )


def invoice_pdf_response(context: AppContext, seller_id: str, invoice_id: str) -> Response:
    """The invoice's PDF (also answered for `Accept: application/pdf` on its JSON URL)."""
    return pdf_response(_document(context, seller_id, invoice_id))


@router.get(
    "/invoices/{invoiceId}/pdf",
    response_class=Response,
    responses=_content(PDF, "The invoice as PDF, in the customer's locale."),
    operation_id="getInvoicePdf",
)
def get_invoice_pdf(invoice_id: InvoiceIdPath, seller_id: SellerId, context: Context) -> Response:
    """The invoice as the customer reads it: a PDF in the customer's `Locale`."""
    return invoice_pdf_response(context, seller_id, invoice_id)


@router.get(
    "/invoices/{invoiceId}/html",
    response_class=Response,
    responses=_content("text/html", "The invoice as one self-contained HTML page."),
    operation_id="getInvoiceHtml",
)
def get_invoice_html(invoice_id: InvoiceIdPath, seller_id: SellerId, context: Context) -> Response:
    """The invoice as an HTML page: the same content as the PDF."""
    return html_response(_document(context, seller_id, invoice_id))


@router.get(
    "/invoices/{invoiceId}/einvoice",
    response_class=Response,
    responses=EINVOICE_RESPONSES,
    operation_id="getInvoiceEinvoice",
)
def get_invoice_einvoice(
    invoice_id: InvoiceIdPath,
    seller_id: SellerId,
    context: Context,
    syntax: Annotated[Syntax, Query(description="The e-invoice's syntax.")],
) -> Response:
    """The invoice as an EN 16931 e-invoice that passes the standard's business rules."""
    return einvoice_response(_document(context, seller_id, invoice_id), syntax)


def html_response(document: InvoiceDocument) -> Response:
    """The HTML page of `document`, allowed nothing but its own inline style and logo."""
    return Response(
        render_html(document),
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": _PAGE_POLICY},
    )


def einvoice_response(document: InvoiceDocument, syntax: Syntax) -> Response:
    """The e-invoice of `document` in `syntax`, as a download named after its number."""
    if syntax is Syntax.FACTURX:
        disposition = f'attachment; filename="{document.number}.pdf"'
        return Response(
            facturx_pdf(document), media_type=PDF, headers={"Content-Disposition": disposition}
        )
    xml = cii_xml(document) if syntax is Syntax.CII else ubl_xml(document)
    disposition = f'attachment; filename="{document.number}-{syntax.value}.xml"'
    return Response(xml, media_type="application/xml", headers={"Content-Disposition": disposition})


# -- credit notes (SPEC §10): the same documents, type 381, referring to their invoice --


def _credit_note(context: AppContext, seller_id: str, credit_note_id: str) -> InvoiceDocument:
    with context.database.unit_of_work(seller_id, "read") as work:
        return credit_note_document(work, credit_note_id)


def credit_note_pdf_response(context: AppContext, seller_id: str, credit_note_id: str) -> Response:
    """The credit note's PDF (also for `Accept: application/pdf` on its JSON URL)."""
    return pdf_response(_credit_note(context, seller_id, credit_note_id))


@router.get(
    "/creditnotes/{creditNoteId}/pdf",
    response_class=Response,
    responses=_content(PDF, "The credit note as PDF, in the customer's locale."),
    operation_id="getCreditNotePdf",
)
def get_credit_note_pdf(
    credit_note_id: CreditNoteIdPath, seller_id: SellerId, context: Context
) -> Response:
    """The credit note as the customer reads it: a PDF naming the invoice it corrects."""
    return credit_note_pdf_response(context, seller_id, credit_note_id)


@router.get(
    "/creditnotes/{creditNoteId}/html",
    response_class=Response,
    responses=_content("text/html", "The credit note as one self-contained HTML page."),
    operation_id="getCreditNoteHtml",
)
def get_credit_note_html(
    credit_note_id: CreditNoteIdPath, seller_id: SellerId, context: Context
) -> Response:
    """The credit note as an HTML page: the same content as the PDF."""
    return html_response(_credit_note(context, seller_id, credit_note_id))


@router.get(
    "/creditnotes/{creditNoteId}/einvoice",
    response_class=Response,
    responses=EINVOICE_RESPONSES,
    operation_id="getCreditNoteEinvoice",
)
def get_credit_note_einvoice(
    credit_note_id: CreditNoteIdPath,
    seller_id: SellerId,
    context: Context,
    syntax: Annotated[Syntax, Query(description="The e-invoice's syntax.")],
) -> Response:
    """The credit note as an EN 16931 e-invoice (type 381; UBL: a CreditNote)."""
    return einvoice_response(_credit_note(context, seller_id, credit_note_id), syntax)

"""What a document page shows, as finished text: the one content model behind both of
its skins, the HTML template (`templates/document.html.j2`) and the PDF template
(`templates/document.typ`).

Everything a reader sees is decided here, once: which blocks and rows there are, every
label in the customer's language, every number, amount and date formatted for the
customer's locale. The skins only place these strings, so the HTML and the PDF of a
document always say the same thing, and both are pure functions of the document.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from typing import Any

from arrears.documents.model import DocumentKind, DocumentLine, InvoiceDocument, Party
from arrears.documents.texts import Texts, texts_for

__all__ = ["DocumentView", "document_view"]


@dataclass(frozen=True, slots=True)
class PartyView:
    label: str
    name: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TierView:
    label: str
    quantity: str
    unit_price: str
    amount: str


@dataclass(frozen=True, slots=True)
class LineView:
    position: str
    description: str
    marks: tuple[str, ...]
    quantity: str
    free: str
    billable: str
    unit_price: str
    amount: str
    late: bool
    discount: bool
    tiers: tuple[TierView, ...]


@dataclass(frozen=True, slots=True)
class DocumentView:
    language: str
    title: str
    page_label: str
    logo_media_type: str | None
    logo_base64: str | None
    seller: PartyView
    customer: PartyView
    facts: tuple[tuple[str, str], ...]
    columns: tuple[str, ...]
    """Description, quantity, free, billable, unit price, amount (a credit note shows
    only the first and the last)."""
    show_quantities: bool
    lines: tuple[LineView, ...]
    totals: tuple[tuple[str, str], ...]
    """The last one is the amount due (the total on a credit note), shown strongest."""
    payment: tuple[str, ...]
    notes: tuple[str, ...]
    footer: str | None

    def as_data(self) -> dict[str, Any]:
        """The view as JSON-ready data (what the PDF template reads)."""
        return asdict(self)


def document_view(document: InvoiceDocument) -> DocumentView:
    """The view of `document` in its customer's locale (`texts_for`)."""
    t = texts_for(document.locale)
    credit_note = document.kind is DocumentKind.CREDIT_NOTE
    logo = document.seller.logo
    return DocumentView(
        language=t.language,
        title=f"{t._('Credit note') if credit_note else t._('Invoice')} {document.number}",
        page_label=t._("Page"),
        logo_media_type=None if logo is None else logo.media_type,
        logo_base64=None if logo is None else base64.b64encode(logo.data).decode("ascii"),
        seller=_party(t, "", document.seller, seller=True),
        customer=_party(t, t._("Bill to"), document.customer, seller=False),
        facts=_facts(t, document),
        columns=(
            t._("Description"),
            t._("Quantity"),
            t._("Free"),
            t._("Billable"),
            t._("Unit price"),
            t._("Amount"),
        ),
        show_quantities=not credit_note,
        lines=tuple(
            _line(t, document.currency, index, line)
            for index, line in enumerate(document.lines, start=1)
        ),
        totals=_totals(t, document, credit_note=credit_note),
        payment=_payment(t, document, credit_note=credit_note),
        notes=document.notes,
        footer=document.footer,
    )


def _party(t: Texts, label: str, party: Party, *, seller: bool) -> PartyView:
    lines: list[str] = []
    if party.address is not None:
        address = party.address
        lines.append(address.line1)
        if address.line2:
            lines.append(address.line2)
        region = f", {address.region}" if address.region else ""
        lines.append(f"{address.postal_code} {address.city}{region}")
        lines.append(t.locale.territories.get(address.country, address.country))
    if party.vat_id:
        lines.append(f"{t._('VAT ID')}: {party.vat_id}")
    if seller and party.tax_number:
        lines.append(f"{t._('Tax number')}: {party.tax_number}")
    lines.extend(contact for contact in (party.email, party.phone) if seller and contact)
    return PartyView(label=label, name=party.name, lines=tuple(lines))


def _facts(t: Texts, document: InvoiceDocument) -> tuple[tuple[str, str], ...]:
    facts = [(t._("Number"), document.number), (t._("Date"), t.date(document.issue_date))]
    if document.period_start is not None and document.period_end is not None:
        facts.append((t._("Period"), t.period(document.period_start, document.period_end)))
    if document.due_date is not None:
        facts.append((t._("Due date"), t.date(document.due_date)))
    if document.customer_reference:
        facts.append((t._("Customer reference"), document.customer_reference))
    if document.preceding_invoice is not None:
        preceding = document.preceding_invoice
        facts.append(
            (t._("Corrects invoice"), f"{preceding.number} ({t.date(preceding.issue_date)})")
        )
    if document.reason:
        facts.append((t._("Reason"), document.reason))
    return tuple(facts)


def _line(t: Texts, currency: str, position: int, line: DocumentLine) -> LineView:
    marks = []
    if line.late:
        marks.append(t._("Late usage from an earlier period"))
    if line.override:
        marks.append(t._("Special price"))
    quantities = not line.is_discount and line.kind != "Credit"
    return LineView(
        position=str(position),
        description=line.description,
        marks=tuple(marks),
        quantity=t.quantity(line.quantity) if quantities else "",
        free=t.quantity(line.free_quantity) if quantities and line.free_quantity else "",
        billable=t.quantity(line.billable_quantity) if quantities else "",
        unit_price=(
            t.price(line.unit_price, currency) if quantities and line.unit_price is not None else ""
        ),
        amount=t.amount(line.amount, currency),
        late=line.late,
        discount=line.is_discount,
        tiers=tuple(
            TierView(
                label=f"{t._('Tier')} {index}",
                quantity=t.quantity(tier.quantity),
                unit_price=t.price(tier.unit_price, currency),
                amount=t.price(tier.amount, currency),
            )
            for index, tier in enumerate(line.tiers, start=1)
        ),
    )


def _totals(
    t: Texts, document: InvoiceDocument, *, credit_note: bool
) -> tuple[tuple[str, str], ...]:
    currency = document.currency
    totals = [
        (t._("Subtotal"), t.amount(document.subtotal, currency)),
        (f"{t._('Tax')} {t.percent(document.tax_rate)}", t.amount(document.tax_amount, currency)),
        (t._("Total"), t.amount(document.total, currency)),
    ]
    if not credit_note:
        totals.append((t._("Amount due"), t.amount(document.amount_due, currency)))
    return tuple(totals)


def _payment(t: Texts, document: InvoiceDocument, *, credit_note: bool) -> tuple[str, ...]:
    lines = [] if credit_note else [t.payment_terms(document)]
    bank = document.seller.bank_account
    if bank is not None:
        if bank.account_holder:
            lines.append(f"{t._('Account holder')}: {bank.account_holder}")
        lines.append(f"IBAN: {bank.iban}")
        if bank.bic:
            lines.append(f"BIC: {bank.bic}")
        lines.append(f"{t._('Reference')}: {document.number}")
    return tuple(lines)

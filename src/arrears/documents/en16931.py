"""An issued document in the terms of EN 16931, the semantic model both e-invoice
syntaxes (CII and UBL) write out.

Arrears' lines map onto it so that the standard's sums hold exactly:
- a line with one unit price is `billable quantity x unit price` (BT-129, BT-146);
  a line priced by tiers, a flat fee or a negative re-pricing is one unit at its
  amount (a price is never negative, BR-27: the sign goes to the quantity), with the
  quantities, free quota, tiers and lateness written in the line note (BT-127);
- a `Discount` line is a document-level allowance (BG-20) in the invoice's tax
  category, so `TaxBasis = LineTotal - AllowanceTotal` (BR-CO-13) is the subtotal;
- one tax breakdown (BG-23): `S` at the invoice's rate, or `Z` at 0 %, whose tax
  amount is the invoice's own (rounded once, SPEC §7; BR-S-09 allows that rounding);
- what is still to pay is `GrandTotal - Prepaid` (BR-CO-16), the prepaid part being
  what was credited or paid before the document was made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from arrears.documents.model import DocumentKind, DocumentLine, InvoiceDocument, Party
from arrears.documents.texts import Texts, texts_for
from arrears.domain.errors import Conflict

__all__ = [
    "Allowance",
    "MissingDocumentData",
    "SemanticDocument",
    "SemanticLine",
    "decimal_text",
    "semantic_document",
    "xml_text",
]

_ZERO = Decimal(0)
UNIT_CODE = "C62"  # UN/ECE Rec 20 "one": usage units are the seller's own


class MissingDocumentData(Conflict):
    """The seller or the customer lacks what EN 16931 requires (`409`, naming it)."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = tuple(missing)
        names = ", ".join(missing)
        super().__init__(
            f"An EN 16931 e-invoice needs {names}: set the seller's profile "
            "(PUT /api/v1/seller) or the customer, then ask again."
        )


@dataclass(frozen=True, slots=True)
class SemanticLine:
    line_id: str
    name: str
    note: str | None
    quantity: Decimal
    net_price: Decimal
    net_amount: Decimal


@dataclass(frozen=True, slots=True)
class Allowance:
    amount: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class SemanticDocument:
    """BT numbers in the comments; every amount carries the currency's minor unit."""

    document: InvoiceDocument
    lines: tuple[SemanticLine, ...]
    allowances: tuple[Allowance, ...]
    category: str  # BT-118: S (standard rated) or Z (zero rated)
    line_total: Decimal  # BT-106
    allowance_total: Decimal  # BT-107
    tax_basis: Decimal  # BT-109, BT-116
    tax_amount: Decimal  # BT-110, BT-117
    grand_total: Decimal  # BT-112
    prepaid: Decimal  # BT-113
    due: Decimal  # BT-115
    payment_terms: str | None  # BT-20


# XML 1.0 has no way to write most control characters (not even escaped); a name typed
# with one still gets its e-invoice, without it.
_NOT_IN_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(value: str) -> str:
    """`value` without the characters XML 1.0 cannot carry."""
    return _NOT_IN_XML.sub("", value)


def decimal_text(value: Decimal) -> str:
    """A decimal as XML wants it: no exponent, no needless trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in {"-0", ""} else text


def semantic_document(document: InvoiceDocument) -> SemanticDocument:
    """The EN 16931 view of `document`; `MissingDocumentData` if a party lacks what the
    standard requires (names, postal addresses with their country, the seller's VAT id)."""
    require_parties(document)
    texts = texts_for(document.locale)
    lines = tuple(
        _semantic_line(index, line, texts)
        for index, line in enumerate(
            (line for line in document.lines if not _is_allowance(line)), start=1
        )
    )
    allowances = tuple(
        Allowance(amount=-line.amount, reason=line.description)
        for line in document.lines
        if _is_allowance(line)
    )
    quantum = Decimal(1).scaleb(-document.minor_unit)
    line_total = sum((line.net_amount for line in lines), _ZERO * quantum)
    allowance_total = sum((allowance.amount for allowance in allowances), _ZERO * quantum)
    due = document.amount_due
    return SemanticDocument(
        document=document,
        lines=lines,
        allowances=allowances,
        category="S" if document.tax_rate > 0 else "Z",
        line_total=line_total,
        allowance_total=allowance_total,
        tax_basis=line_total - allowance_total,
        tax_amount=document.tax_amount,
        grand_total=document.total,
        prepaid=document.total - due,
        due=due,
        payment_terms=_payment_terms(document, texts),
    )


def require_parties(document: InvoiceDocument) -> None:
    missing = [
        *_party_gaps("Seller", document.seller),
        *_party_gaps("Customer", document.customer),
    ]
    # BR-CO-26 and BR-S-02 / BR-Z-02: the seller is known by its VAT id.
    if not document.seller.vat_id:
        missing.append("Seller.VatId")
    if missing:
        raise MissingDocumentData(missing)


def _party_gaps(role: str, party: Party) -> list[str]:
    gaps = []
    if not party.name.strip():
        gaps.append(f"{role}.{'LegalName' if role == 'Seller' else 'Name'}")
    if party.address is None:
        gaps.append(f"{role}.Address")
    return gaps


def _is_allowance(line: DocumentLine) -> bool:
    return line.is_discount and line.amount < 0


def _semantic_line(index: int, line: DocumentLine, texts: Texts) -> SemanticLine:
    quantity, price = _quantity_and_price(line)
    return SemanticLine(
        line_id=str(index),
        name=line.description,
        note=texts.line_note(line) or None,
        quantity=quantity,
        net_price=price,
        net_amount=line.amount,
    )


def _quantity_and_price(line: DocumentLine) -> tuple[Decimal, Decimal]:
    price = line.unit_price
    if (
        price is not None
        and price >= 0
        and line.billable_quantity >= 0
        and (line.billable_quantity * price).quantize(line.amount) == line.amount
    ):
        return line.billable_quantity, price
    return (Decimal(1) if line.amount >= 0 else Decimal(-1)), abs(line.amount)


def _payment_terms(document: InvoiceDocument, texts: Texts) -> str | None:
    if document.kind is DocumentKind.CREDIT_NOTE:
        return None
    return texts.payment_terms(document)

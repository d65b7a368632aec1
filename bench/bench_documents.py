"""How long making a 1,000-line invoice's documents takes (SPEC §12: under 2 s).

Prints, for each document (HTML, PDF, CII, UBL, Factur-X), the best of three runs in
wall-clock and CPU seconds, and the ratio of the PDF to a raw baseline measured in the
same run: Typst compiling a bare 1,000-row table with no template around it. Each run
makes a document with another number, so no cache of an earlier run answers it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal

import typst

from arrears.documents.cii import cii_xml
from arrears.documents.facturx import facturx_pdf
from arrears.documents.html import render_html
from arrears.documents.model import (
    Address,
    BankAccount,
    DocumentKind,
    DocumentLine,
    DocumentTier,
    InvoiceDocument,
    Party,
)
from arrears.documents.pdf import render_pdf
from arrears.documents.ubl import ubl_xml

LINES = 1000
RUNS = 3


def _line(index: int) -> DocumentLine:
    quantity = Decimal(index * 37 + 1000)
    if index % 3:
        price = Decimal("0.0125")
        return DocumentLine(
            kind="Usage",
            description=f"Component {index:04d}",
            quantity=quantity,
            billable_quantity=quantity,
            unit_price=price,
            amount=(quantity * price).quantize(Decimal("0.01")),
            late=index % 10 == 0,
        )
    free = Decimal(1000)
    billable = quantity - free
    tiers = (
        DocumentTier(
            min(billable, Decimal(500)), Decimal("0.02"), min(billable, 500) * Decimal("0.02")
        ),
        DocumentTier(
            max(billable - 500, Decimal(0)),
            Decimal("0.01"),
            max(billable - 500, 0) * Decimal("0.01"),
        ),
    )
    return DocumentLine(
        kind="Usage",
        description=f"Component {index:04d}",
        quantity=quantity,
        free_quantity=free,
        billable_quantity=billable,
        tiers=tiers,
        amount=sum((tier.amount for tier in tiers), Decimal(0)).quantize(Decimal("0.01")),
    )


def invoice(lines: int) -> InvoiceDocument:
    kept = tuple(_line(index) for index in range(lines))
    subtotal = sum((line.amount for line in kept), Decimal("0.00"))
    tax = (subtotal * Decimal("0.19")).quantize(Decimal("0.01"))
    address = Address(line1="Torstraße 12", postal_code="10119", city="Berlin", country="DE")
    return InvoiceDocument(
        kind=DocumentKind.INVOICE,
        number="BENCH-2026-000001",
        issue_date=date(2026, 2, 1),
        currency="EUR",
        minor_unit=2,
        seller=Party(
            name="Zählerwerk GmbH",
            address=address,
            vat_id="DE123456789",
            bank_account=BankAccount(iban="DE89370400440532013000"),
        ),
        customer=Party(name="Acme GmbH", address=address),
        lines=kept,
        subtotal=subtotal,
        tax_rate=Decimal(19),
        tax_amount=tax,
        total=subtotal + tax,
        amount_due=subtotal + tax,
        locale="de-DE",
        due_date=date(2026, 2, 15),
        period_start=date(2026, 1, 1),
        period_end=date(2026, 1, 31),
        payment_terms_days=14,
    )


def best(
    make: Callable[[InvoiceDocument], object], document: InvoiceDocument
) -> tuple[float, float]:
    walls, cpus = [], []
    for run in range(RUNS):
        numbered = replace(document, number=f"{document.number}-{time.monotonic_ns()}-{run}")
        wall, cpu = time.perf_counter(), time.process_time()
        make(numbered)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def raw_table(document: InvoiceDocument) -> bytes:
    rows = ",".join(
        f"[{line.description}], [{line.quantity}], [{line.amount}]" for line in document.lines
    )
    source = f'#table(columns: 3, {rows})\n#"{document.number}"'
    pdf = typst.Compiler().compile(input=source.encode(), format="pdf")
    assert isinstance(pdf, bytes)
    return pdf


def main() -> None:
    document = invoice(LINES)
    render_pdf(invoice(1))  # the fonts are found once per process
    raw_wall, _ = best(raw_table, document)
    print(f"documents of a {LINES:,}-line invoice (best of {RUNS}, seconds wall / CPU):")
    for name, make in (
        ("html", render_html),
        ("pdf", render_pdf),
        ("cii", cii_xml),
        ("ubl", ubl_xml),
        ("factur-x", facturx_pdf),
    ):
        wall, cpu = best(make, document)
        ratio = f"  ({wall / raw_wall:.1f}x a bare Typst table)" if name == "pdf" else ""
        print(f"  {name:9s} {wall:6.3f} / {cpu:6.3f}{ratio}")
    print(f"  baseline  {raw_wall:6.3f}  (Typst, a bare {LINES:,}-row table)")


if __name__ == "__main__":
    main()

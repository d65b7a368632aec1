"""SPEC §12, e-invoices, as a property: whatever lines an invoice has (per-unit, tiered,
negative re-pricing, free quota, late, override, discounts that leave the subtotal at
or above zero), at whatever rate, in EUR or JPY, its CII and UBL pass the EN 16931
rules."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from arrears.documents.cii import cii_xml
from arrears.documents.model import DocumentLine, DocumentTier
from arrears.documents.ubl import ubl_xml
from tests.document_factories import invoice_document, money
from tests.einvoice_rules import failed_rules

D = Decimal
quantities = st.decimals(min_value=0, max_value=10**6, places=3)
prices = st.decimals(min_value=0, max_value=100, places=4)


@st.composite
def lines(draw: st.DrawFn, currency: str) -> DocumentLine:
    quantity = draw(quantities)
    free = min(quantity, draw(quantities))
    billable = quantity - free
    if draw(st.booleans()):
        price = draw(prices)
        return DocumentLine(
            kind="Usage",
            description=draw(st.sampled_from(["Storage", "API calls", "Zählerstände <&>"])),
            quantity=quantity,
            free_quantity=free,
            billable_quantity=billable,
            unit_price=price,
            amount=money(billable * price, currency),
            late=draw(st.booleans()),
            override=draw(st.booleans()),
        )
    split = draw(st.decimals(min_value=0, max_value=billable, places=3))
    tiers = tuple(
        DocumentTier(part, price, part * price)
        for part, price in ((split, draw(prices)), (billable - split, draw(prices)))
    )
    amount = money(sum((tier.amount for tier in tiers), D(0)), currency)
    if draw(st.booleans()):
        amount = -amount  # a volume tier reached later re-prices the period
    return DocumentLine(
        kind="Usage",
        description="Calls",
        quantity=quantity,
        free_quantity=free,
        billable_quantity=billable,
        tiers=tiers,
        amount=amount,
    )


@st.composite
def invoices(draw: st.DrawFn) -> tuple[str, Decimal, tuple[DocumentLine, ...]]:
    currency = draw(st.sampled_from(["EUR", "JPY"]))
    drawn = draw(st.lists(lines(currency), min_size=1, max_size=6))
    charged = sum((line.amount for line in drawn), D(0))
    if charged < 0:  # an invoice's lines never sum below zero
        drawn.append(DocumentLine(kind="RecurringFee", description="Fee", amount=-charged))
        charged = D(0)
    share = draw(st.decimals(min_value=0, max_value=1, places=2))
    discount = money(charged * share, currency)
    if discount:
        drawn.append(DocumentLine(kind="Discount", description="Discount", amount=-discount))
    rate = draw(st.sampled_from([D(0), D(7), D(19), D("7.7")]))
    return currency, rate, tuple(drawn)


@settings(max_examples=25, deadline=None)
@given(invoices())
def test_any_invoice_passes_the_rules_in_both_syntaxes(
    drawn: tuple[str, Decimal, tuple[DocumentLine, ...]],
) -> None:
    currency, rate, kept = drawn
    document = invoice_document(currency=currency, tax_rate=rate, lines=kept)
    assert failed_rules(cii_xml(document)) == []
    assert failed_rules(ubl_xml(document)) == []

"""The words and numbers of a document in the customer's language.

Texts come from gettext catalogs (`locales/<language>/LC_MESSAGES/documents.po`),
compiled in memory by babel when first used, so a fresh checkout needs no build step
and no binary file is committed. A language without a catalog reads English.
Numbers, amounts and dates are formatted by babel from CLDR for the full locale
(`de-DE`, `de-CH`, `en-US`, ...).
"""

from __future__ import annotations

import datetime as dt
import functools
import gettext
from decimal import Decimal
from io import BytesIO
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_interval
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent

from arrears.documents.model import DocumentLine, InvoiceDocument

__all__ = ["Texts", "texts_for"]

_LOCALES = Path(__file__).parent / "locales"
_FALLBACK = "en_US"


@functools.cache
def _catalog(language: str) -> gettext.NullTranslations:
    source = _LOCALES / language / "LC_MESSAGES" / "documents.po"
    if not source.is_file():
        return gettext.NullTranslations()
    with source.open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def _locale(tag: str) -> Locale:
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(_FALLBACK)


class Texts:
    """Translation and CLDR formatting for one locale and currency; pure functions of
    their arguments, so a document always reads the same."""

    def __init__(self, locale_tag: str) -> None:
        self.locale = _locale(locale_tag)
        self.language = self.locale.language
        self._translations = _catalog(self.language)

    def _(self, message: str) -> str:
        return self._translations.gettext(message)

    def amount(self, value: Decimal, currency: str) -> str:
        """An amount as issued: exactly its minor unit's places (`1.234,50 €`)."""
        return format_currency(value, currency, locale=self.locale)

    def price(self, value: Decimal, currency: str) -> str:
        """A unit price with every significant place (`€0.0012`), at least the minor unit's."""
        return format_currency(value, currency, locale=self.locale, decimal_quantization=False)

    def quantity(self, value: Decimal) -> str:
        return format_decimal(value, locale=self.locale, decimal_quantization=False)

    def date(self, value: dt.date) -> str:
        return format_date(value, format="medium", locale=self.locale)

    def period(self, start: dt.date, end: dt.date) -> str:
        """Both days of a period as the locale writes an interval (`1.-31. Jan. 2026`)."""
        return format_interval(start, end, skeleton="yMMMd", locale=self.locale)

    def percent(self, rate: Decimal) -> str:
        return format_percent(
            rate / 100, format="#,##0.###%", locale=self.locale, decimal_quantization=False
        )

    def line_note(self, line: DocumentLine, currency: str | None = None) -> str:
        """What a line's amount is made of, in words: quantities, tiers, late or
        override pricing (the e-invoice's line note; the PDF shows the same in columns)."""
        parts = []
        if line.free_quantity:
            parts.append(
                self._("Quantity {quantity}, free {free}, billable {billable}").format(
                    quantity=self.quantity(line.quantity),
                    free=self.quantity(line.free_quantity),
                    billable=self.quantity(line.billable_quantity),
                )
            )
        for tier in line.tiers:
            price = (
                self.quantity(tier.unit_price)
                if currency is None
                else self.price(tier.unit_price, currency)
            )
            parts.append(
                self._("Tier: {quantity} at {price}").format(
                    quantity=self.quantity(tier.quantity), price=price
                )
            )
        if line.late:
            parts.append(self._("Late usage from an earlier period"))
        if line.override:
            parts.append(self._("Special price"))
        return "; ".join(parts)

    def payment_terms(self, document: InvoiceDocument) -> str:
        if document.due_date is None:
            return self._("Payable on receipt.")
        if document.payment_terms_days is None:
            return self._("Payable by {due_date}.").format(due_date=self.date(document.due_date))
        return self._("Payable within {days} days, by {due_date}.").format(
            days=document.payment_terms_days, due_date=self.date(document.due_date)
        )


@functools.cache
def texts_for(locale_tag: str) -> Texts:
    """The `Texts` of `locale_tag` (`de-DE`); an unknown tag reads as `en-US`."""
    return Texts(locale_tag)

"""Templates, and numbers and dates written in the browser's language.

The language comes from `Accept-Language` (the first one CLDR knows, by the header's
weights), falling back to English. Babel formats from CLDR's data; decimals are written
with every digit they carry (no rounding: a quantity of 0.000001 stays that), amounts
in their currency's minor unit.
"""

from __future__ import annotations

from copy import copy
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from arrears.domain.money import currency

__all__ = ["Formats", "locale_of", "render", "templates"]

HERE = Path(__file__).parent
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_FALLBACK = Locale("en")


def locale_of(accept_language: str | None) -> Locale:
    """The best locale CLDR knows among the header's languages, or English."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, parameters = part.strip().partition(";")
        weight = 1.0
        if parameters.strip().startswith("q="):
            try:
                weight = float(parameters.strip()[2:])  # a header weight, not an amount
            except ValueError:
                continue
        if tag and tag != "*" and weight > 0:
            weighted.append((-weight, position, tag))
    for _, _, tag in sorted(weighted):
        try:
            return Locale.parse(tag.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            continue
    return _FALLBACK


class Formats:
    """The template filters for one request's locale."""

    def __init__(self, locale: Locale) -> None:
        self.locale = locale

    def number(self, value: Decimal | int | None) -> str:
        """Every significant digit, and no trailing zeros a stored scale added."""
        if value is None:
            return ""
        if isinstance(value, Decimal):
            value = value.quantize(1) if value == value.to_integral_value() else value.normalize()
        return format_decimal(value, locale=self.locale, decimal_quantization=False)

    def money(self, value: Decimal | None, code: str) -> str:
        """The amount with exactly its currency's ISO 4217 minor digits (amounts are
        stored in that unit). CLDR's digits differ for some currencies (IQD: 0, ISO: 3)
        and would drop or round digits, so the locale's pattern gets ISO's."""
        if value is None:
            return ""
        iso = currency(code)
        pattern = copy(self.locale.currency_formats["standard"])
        pattern.frac_prec = (iso.minor_unit, iso.minor_unit)
        return pattern.apply(value, self.locale, currency=code, currency_digits=False)

    def day(self, value: datetime | date | str | None) -> str:
        if value is None:
            return ""
        if isinstance(value, str):  # `YYYY-MM-DD` from a SQL group
            value = date.fromisoformat(value)
        if isinstance(value, datetime):
            value = value.astimezone(UTC).date()
        return format_date(value, format="medium", locale=self.locale)

    def instant(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return format_datetime(value, format="medium", tzinfo=UTC, locale=self.locale) + " UTC"

    def month(self, value: str) -> str:
        """`YYYY-MM` as the locale writes a month and year (e.g. `Mar 2026`)."""
        year, month = value.split("-")
        return format_date(date(int(year), int(month), 1), format="MMM y", locale=self.locale)


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """The page `template` in the request's language."""
    formats = Formats(locale_of(request.headers.get("accept-language")))
    html = templates.get_template(template).render(
        request=request, f=formats, lang=str(formats.locale).replace("_", "-"), **values
    )
    response = HTMLResponse(html, status_code=status_code)
    # Pages show one seller's data: never cached by a shared cache, nor framed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    return response

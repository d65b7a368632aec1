"""Wire types of who issues and receives invoices (SPEC §12): postal addresses, VAT ids,
bank accounts, payment terms and logos, checked by the domain's rules."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from arrears.api.models import PascalModel
from arrears.domain.errors import FieldError
from arrears.domain.profiles import (
    MAX_PAYMENT_TERMS_DAYS,
    bic_error,
    compact,
    iban_error,
    vat_id_error,
)

__all__ = [
    "MAX_LOGO_BYTES",
    "BankAccountDetails",
    "LogoIn",
    "PaymentTermsDays",
    "PostalAddress",
    "VatId",
]

MAX_LOGO_BYTES = 256 * 1024
"""SPEC §12: a logo of at most 256 KiB (decoded)."""

_Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _checked(check: Callable[[str, str], FieldError | None]) -> AfterValidator:
    # The domain's check, its code and message; the value is kept in its compact form.
    def validate(value: str) -> str:
        error = check(value, "")
        if error is not None:
            raise PydanticCustomError(error.code, "{message}", {"message": error.message})
        return compact(value)

    return AfterValidator(validate)


VatId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=30),
    _checked(vat_id_error),
    Field(description="A VAT id with its country prefix, e.g. DE136695976 (checked)."),
]
"""A VAT id that passes its country's rules, stored without spaces or dots."""

PaymentTermsDays = Annotated[int, Field(ge=0, le=MAX_PAYMENT_TERMS_DAYS)]


class PostalAddress(PascalModel):
    """An address as invoices print it (SPEC §12); `Country` is ISO 3166-1 alpha-2."""

    line1: _Line = Field(alias="Line1")
    line2: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, alias="Line2"
    )
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)]
    city: _Line
    region: Annotated[str, StringConstraints(max_length=200)] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = Field(
        description="ISO 3166-1 alpha-2 code, e.g. DE."
    )


class BankAccountDetails(PascalModel):
    iban: Annotated[str, StringConstraints(min_length=1, max_length=42), _checked(iban_error)]
    bic: (
        Annotated[str, StringConstraints(min_length=1, max_length=14), _checked(bic_error)] | None
    ) = None
    account_holder: Annotated[str, StringConstraints(max_length=200)] | None = None


def _logo(text: str) -> str:
    try:
        image = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PydanticCustomError("invalid_base64", "A logo is sent as base64.") from None
    if len(image) > MAX_LOGO_BYTES:
        raise PydanticCustomError("too_large", "A logo is at most 256 KiB.")
    if logo_media_type(image) is None:
        raise PydanticCustomError("unsupported_image", "A logo is a PNG or an SVG image.")
    return text


def logo_media_type(image: bytes) -> str | None:
    """`image/png` or `image/svg+xml` for the images a logo may be, else None."""
    if image.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    head = image[:1024].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "image/svg+xml"
    return None


LogoIn = Annotated[
    str,
    StringConstraints(max_length=(MAX_LOGO_BYTES * 4) // 3 + 4),
    AfterValidator(_logo),
    Field(description="A PNG or SVG image, base64, at most 256 KiB."),
]

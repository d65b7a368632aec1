"""Who issues and who receives an invoice (SPEC §8, §12): the seller's profile, the tax
ids and bank account numbers it carries, payment terms, and the parties as an invoice
keeps them when it is issued.

VAT ids and IBANs are checked by their published rules (country formats and check
digits, `python-stdnum`), so that a typo is refused when it is typed rather than found
by a customer's accounts payable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.util import get_cc_module

from arrears.domain.errors import FieldError

__all__ = [
    "DEFAULT_PAYMENT_TERMS_DAYS",
    "MAX_PAYMENT_TERMS_DAYS",
    "BankAccount",
    "Party",
    "SellerProfile",
    "bic_error",
    "due_date",
    "iban_error",
    "payment_terms_days",
    "vat_id_error",
]

DEFAULT_PAYMENT_TERMS_DAYS: Final = 14
"""SPEC §8: without the customer's or the seller's terms, an invoice is due in 14 days."""
MAX_PAYMENT_TERMS_DAYS: Final = 365

Address = dict[str, str]


@dataclass(frozen=True, slots=True)
class BankAccount:
    iban: str
    bic: str | None = None
    account_holder: str | None = None


@dataclass(frozen=True, slots=True)
class SellerProfile:
    """What a seller prints on its invoices (SPEC §12). `logo` is the image's bytes."""

    legal_name: str
    address: Address
    vat_id: str | None = None
    tax_number: str | None = None
    email: str | None = None
    phone: str | None = None
    bank_account: BankAccount | None = None
    payment_terms_days: int | None = None
    footer: str | None = None
    logo: bytes | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Party:
    """A seller or a customer as an invoice keeps them: copied when the invoice is
    issued, so that editing a profile later changes no issued invoice."""

    name: str
    address: Address | None = None
    vat_id: str | None = None
    tax_number: str | None = None
    bank_account: BankAccount | None = None


def payment_terms_days(customer_days: int | None, seller_days: int | None) -> int:
    """The customer's terms, else the seller's, else 14 days (SPEC §8)."""
    if customer_days is not None:
        return customer_days
    if seller_days is not None:
        return seller_days
    return DEFAULT_PAYMENT_TERMS_DAYS


def due_date(document_date: datetime, days: int) -> datetime:
    """When an invoice issued at `document_date` is due: `days` whole days later."""
    return document_date + timedelta(days=days)


def compact(value: str) -> str:
    """A tax id or account number without the spaces, dots and dashes people type."""
    return "".join(ch for ch in value if ch not in " .-/").upper()


def vat_id_error(value: str, field: str) -> FieldError | None:
    """None when `value` is a valid VAT id: an EU one (with its member state's prefix,
    `EL` for Greece) or another country's that `python-stdnum` knows (e.g. GB, CH, NO);
    else the error, naming `field`."""
    number = compact(value)
    if eu_vat.is_valid(number):
        return None
    module = get_cc_module(number[:2].lower(), "vat") if number[:2].isalpha() else None
    if module is not None and module.is_valid(number):
        return None
    return FieldError(
        field,
        "invalid_vat_id",
        "A VAT id starts with its country's code and passes that country's check "
        "digits, e.g. DE136695976.",
    )


def iban_error(value: str, field: str) -> FieldError | None:
    """None when `value` is a valid IBAN (country length and check digits)."""
    try:
        stdnum_iban.validate(value)
    except StdnumError:
        return FieldError(
            field,
            "invalid_iban",
            "An IBAN has its country's length and check digits, e.g. DE89370400440532013000.",
        )
    return None


def bic_error(value: str, field: str) -> FieldError | None:
    """None when `value` is a well-formed BIC (8 or 11 characters, a country code)."""
    try:
        stdnum_bic.validate(value)
    except StdnumError:
        return FieldError(field, "invalid_bic", "A BIC has 8 or 11 characters, e.g. COBADEFFXXX.")
    return None

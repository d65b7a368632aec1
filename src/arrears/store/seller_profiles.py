"""The seller's profile (SPEC §12) and the parties an invoice copies when it is issued."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic.alias_generators import to_pascal
from sqlalchemy import select
from sqlalchemy.orm import Session

from arrears.domain.profiles import BankAccount, Party, SellerProfile
from arrears.store.tables import CustomerRow, SellerProfileRow, SellerRow
from arrears.store.usage import batched

__all__ = [
    "SellerProfileRepository",
    "bank_account_from_json",
    "bank_account_to_json",
    "party_from_json",
    "party_to_json",
]


class SellerProfileRepository:
    """The profile of one seller: the row is its own, keyed by the seller."""

    def __init__(self, session: Session, seller_id: str) -> None:
        self._session = session
        self.seller_id = seller_id

    def get(self) -> SellerProfile | None:
        row = self._session.get(SellerProfileRow, self.seller_id)
        return None if row is None else _profile(row)

    def put(self, profile: SellerProfile) -> None:
        """Store `profile` whole, replacing the one before (PUT semantics)."""
        row = self._session.get(SellerProfileRow, self.seller_id, with_for_update=True)
        if row is None:
            row = SellerProfileRow(seller_id=self.seller_id)
            self._session.add(row)
        row.legal_name = profile.legal_name
        row.address = dict(profile.address)
        row.vat_id = profile.vat_id
        row.tax_number = profile.tax_number
        row.email = profile.email
        row.phone = profile.phone
        row.bank_account = bank_account_to_json(profile.bank_account)
        row.payment_terms_days = profile.payment_terms_days
        row.footer = profile.footer
        row.logo = profile.logo
        row.updated_at = profile.updated_at
        self._session.flush()

    def seller_party(self) -> tuple[Party, int | None]:
        """The seller as its invoices show it, and its payment terms: the profile's legal
        name and details, or, before it has one, the name it signed up with."""
        row = self._session.get(SellerProfileRow, self.seller_id)
        if row is None:
            name = self._session.execute(
                select(SellerRow.name).where(SellerRow.id == self.seller_id)
            ).scalar_one()
            return Party(name=name), None
        party = Party(
            name=row.legal_name,
            address=dict(row.address),
            vat_id=row.vat_id,
            tax_number=row.tax_number,
            bank_account=bank_account_from_json(row.bank_account),
        )
        return party, row.payment_terms_days

    def customer_parties(self, customer_ids: Iterable[str]) -> dict[str, tuple[Party, int | None]]:
        """Each customer as an invoice shows it, with its payment terms; a query per 2,000."""
        found: dict[str, tuple[Party, int | None]] = {}
        for chunk in batched(sorted(set(customer_ids)), 2_000):
            # The columns a party needs, not the rows as ORM objects: a batch reads up to
            # 500 customers, and building (and collecting) their objects cost billing
            # more than the query.
            query = select(*_PARTY_COLUMNS).where(
                CustomerRow.seller_id == self.seller_id, CustomerRow.id.in_(chunk)
            )
            for id_, company, first, last, address, vat_id, terms in self._session.execute(query):
                party = Party(
                    name=customer_name(company, first, last),
                    address=dict(address) if address else None,
                    vat_id=vat_id,
                )
                found[id_] = (party, terms)
        return found


def customer_name(company: str | None, first: str | None, last: str | None) -> str:
    """A customer's name on an invoice: the company's, else the person's."""
    if company:
        return company
    return " ".join(part for part in (first, last) if part)


_PARTY_COLUMNS = (
    CustomerRow.id,
    CustomerRow.company_name,
    CustomerRow.first_name,
    CustomerRow.last_name,
    CustomerRow.address,
    CustomerRow.vat_id,
    CustomerRow.payment_terms_days,
)


def bank_account_to_json(account: BankAccount | None) -> dict[str, str] | None:
    if account is None:
        return None
    found = {"Iban": account.iban, "Bic": account.bic, "AccountHolder": account.account_holder}
    return {key: value for key, value in found.items() if value is not None}


def bank_account_from_json(data: dict[str, str] | None) -> BankAccount | None:
    if not data:
        return None
    return BankAccount(data["Iban"], data.get("Bic"), data.get("AccountHolder"))


def _profile(row: SellerProfileRow) -> SellerProfile:
    return SellerProfile(
        legal_name=row.legal_name,
        address=dict(row.address),
        vat_id=row.vat_id,
        tax_number=row.tax_number,
        email=row.email,
        phone=row.phone,
        bank_account=bank_account_from_json(row.bank_account),
        payment_terms_days=row.payment_terms_days,
        footer=row.footer,
        logo=row.logo,
        updated_at=row.updated_at,
    )


def party_to_json(party: Party | None) -> dict[str, object] | None:
    """A party as an invoice keeps it: SPEC §8's names, an address in SPEC §12's (a
    customer's stored address keys are the wire model's, `postal_code`: PostalCode)."""
    if party is None:
        return None
    found: dict[str, object | None] = {
        "Name": party.name,
        "Address": None
        if party.address is None
        else {_pascal(key): value for key, value in party.address.items()},
        "VatId": party.vat_id,
        "TaxNumber": party.tax_number,
        "BankAccount": bank_account_to_json(party.bank_account),
    }
    return {key: value for key, value in found.items() if value is not None}


def party_from_json(data: dict[str, object] | None) -> Party | None:
    if data is None:
        return None
    address = data.get("Address")
    account = data.get("BankAccount")
    return Party(
        name=str(data["Name"]),
        address=None
        if not isinstance(address, dict)
        else {str(k): str(v) for k, v in address.items()},
        vat_id=_text(data.get("VatId")),
        tax_number=_text(data.get("TaxNumber")),
        bank_account=bank_account_from_json(_texts(account)),
    )


def _pascal(key: str) -> str:
    # A seller's address is stored in wire names already (PostalCode), a customer's in
    # the model's (postal_code); to_pascal would make PostalCode "Postalcode".
    return key if key[:1].isupper() else to_pascal(key)


def _texts(value: object) -> dict[str, str] | None:
    return None if not isinstance(value, dict) else {str(k): str(v) for k, v in value.items()}


def _text(value: object) -> str | None:
    return None if value is None else str(value)

"""The tenant registry: sellers and their API keys.

This is the one repository not scoped to a seller, because it is how a request finds
its seller in the first place. Only the admin surface and authentication use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from arrears.store.tables import ApiKeyRow, SellerRow

__all__ = ["ApiKeyRecord", "SellerRecord", "SellerRegistry"]


@dataclass(frozen=True, slots=True)
class SellerRecord:
    id: str
    name: str
    currency: str
    invoice_prefix: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    seller_id: str
    secret_sha256: str
    created_at: datetime
    revoked_at: datetime | None


class SellerRegistry:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, seller: SellerRecord) -> None:
        self._session.add(
            SellerRow(
                id=seller.id,
                name=seller.name,
                currency=seller.currency,
                invoice_prefix=seller.invoice_prefix,
                created_at=seller.created_at,
            )
        )
        self._session.flush()

    def get(self, seller_id: str) -> SellerRecord | None:
        row = self._session.get(SellerRow, seller_id)
        if row is None:
            return None
        return SellerRecord(
            id=row.id,
            name=row.name,
            currency=row.currency,
            invoice_prefix=row.invoice_prefix,
            created_at=row.created_at,
        )

    def add_key(self, key: ApiKeyRecord) -> None:
        self._session.add(
            ApiKeyRow(
                id=key.id,
                seller_id=key.seller_id,
                secret_sha256=key.secret_sha256,
                created_at=key.created_at,
                revoked_at=key.revoked_at,
            )
        )
        self._session.flush()

    def find_key(self, key_id: str) -> ApiKeyRecord | None:
        row = self._session.execute(
            select(ApiKeyRow).where(ApiKeyRow.id == key_id)
        ).scalar_one_or_none()
        if row is None:
            return None
        return ApiKeyRecord(
            id=row.id,
            seller_id=row.seller_id,
            secret_sha256=row.secret_sha256,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )

    def revoke_key(self, seller_id: str, key_id: str, at: datetime) -> bool:
        """Revoke a live key of this seller; False when there is no such live key."""
        result = self._session.execute(
            update(ApiKeyRow)
            .where(
                ApiKeyRow.id == key_id,
                ApiKeyRow.seller_id == seller_id,
                ApiKeyRow.revoked_at.is_(None),
            )
            .values(revoked_at=at)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

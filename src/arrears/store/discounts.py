"""Discounts, coupons and the discounts contracts have (SPEC §11), in storage.

A coupon is redeemed by one guarded `UPDATE` that counts the redemption only while the
coupon is neither spent nor expired: PostgreSQL re-checks the condition on the row's
newest version after waiting for a concurrent redemption's lock, and SQLite runs one
writer at a time, so no number of concurrent orders redeems a coupon more than
`MaxRedemptions` times.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update

from arrears.domain.discounts import Coupon, Discount, DiscountSubscription, DiscountTarget
from arrears.domain.errors import Conflict, NotFound
from arrears.domain.paging import Page, PageRequest
from arrears.store.tables import ContractDiscountRow, CouponRow, DiscountRow
from arrears.store.tenancy import TenantRepository, batched, next_position

__all__ = ["ContractDiscount", "DiscountRepository", "StoredCoupon", "StoredDiscount"]


@dataclass(frozen=True, slots=True)
class StoredDiscount:
    discount: Discount
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredCoupon:
    id: str
    created_at: datetime
    coupon: Coupon


@dataclass(frozen=True, slots=True)
class ContractDiscount:
    """A discount given to a contract: by id, or by redeeming `coupon_code`."""

    discount_id: str
    first_period: int
    coupon_code: str | None = None


class DiscountRepository(TenantRepository):
    # -- discounts ---------------------------------------------------------------------

    def add_discount(self, discount: Discount, created_at: datetime) -> None:
        self._session.add(
            DiscountRow(
                id=discount.id,
                seller_id=self.seller_id,
                created_at=created_at,
                name=discount.name,
                applies_to=discount.applies_to.value,
                percentage=discount.percentage,
                amount=discount.amount,
                periods=discount.periods,
            )
        )

    def discount(self, discount_id: str) -> StoredDiscount:
        return _stored_discount(self._row(DiscountRow, discount_id, "discount"))

    def discounts(self, page: PageRequest) -> Page[StoredDiscount]:
        return self._page(self._scoped(DiscountRow), DiscountRow, page, _stored_discount)

    def existing_discount_ids(self, discount_ids: Iterable[str]) -> set[str]:
        """Which of these ids are discounts of this seller (one query)."""
        wanted = set(discount_ids)
        if not wanted:
            return set()
        query = select(DiscountRow.id).where(
            DiscountRow.seller_id == self.seller_id, DiscountRow.id.in_(wanted)
        )
        return set(self._session.execute(query).scalars())

    # -- coupons -----------------------------------------------------------------------

    def add_coupon(self, stored: StoredCoupon) -> None:
        coupon = stored.coupon
        with self._unique(f"A coupon with Code {coupon.code!r} exists."):
            self._session.add(
                CouponRow(
                    id=stored.id,
                    seller_id=self.seller_id,
                    created_at=stored.created_at,
                    code=coupon.code,
                    discount_id=coupon.discount_id,
                    max_redemptions=coupon.max_redemptions,
                    valid_until=coupon.valid_until,
                    redemptions=0,
                )
            )

    def coupon(self, coupon_id: str) -> StoredCoupon:
        return _stored_coupon(self._row(CouponRow, coupon_id, "coupon"))

    def coupons(self, page: PageRequest) -> Page[StoredCoupon]:
        return self._page(self._scoped(CouponRow), CouponRow, page, _stored_coupon)

    def coupon_by_code(self, code: str) -> StoredCoupon | None:
        query = self._scoped(CouponRow).where(CouponRow.code == code)
        row = self._session.execute(query).scalar_one_or_none()
        return None if row is None else _stored_coupon(row)

    def redeem(self, code: str, now: datetime) -> str:
        """Count one redemption of coupon `code` and answer its discount id. Raises
        `NotFound` for an unknown code and `Conflict` (409) for a spent or expired
        coupon; the guarded update is the whole check (see the module doc)."""
        redeemed = self._session.execute(
            update(CouponRow)
            .where(
                CouponRow.seller_id == self.seller_id,
                CouponRow.code == code,
                or_(
                    CouponRow.max_redemptions.is_(None),
                    CouponRow.redemptions < CouponRow.max_redemptions,
                ),
                or_(CouponRow.valid_until.is_(None), CouponRow.valid_until >= now),
            )
            .values(redemptions=CouponRow.redemptions + 1)
            .returning(CouponRow.discount_id)
        ).scalar_one_or_none()
        if redeemed is not None:
            return redeemed
        stored = self.coupon_by_code(code)
        if stored is None:
            raise NotFound(f"There is no coupon {code}.")
        coupon = stored.coupon
        if coupon.valid_until is not None and now > coupon.valid_until:
            raise Conflict(f"Coupon {code} expired at {coupon.valid_until.isoformat()}.")
        raise Conflict(
            f"Coupon {code} is spent: MaxRedemptions ({coupon.max_redemptions}) is reached."
        )

    # -- the discounts of contracts ----------------------------------------------------

    def add_contract_discounts(
        self, contract_id: str, given: Sequence[ContractDiscount], created_at: datetime
    ) -> None:
        """Give the contract these discounts, after the ones it has. The caller holds
        the contract's row lock, so positions are not raced."""
        if not given:
            return
        first = next_position(
            self._session,
            ContractDiscountRow.position,
            ContractDiscountRow.contract_id,
            contract_id,
        )
        self._session.add_all(
            ContractDiscountRow(
                contract_id=contract_id,
                position=first + offset,
                discount_id=one.discount_id,
                first_period=one.first_period,
                coupon_code=one.coupon_code,
                created_at=created_at,
            )
            for offset, one in enumerate(given)
        )
        self._session.flush()

    def contract_discounts(
        self, contract_ids: Iterable[str]
    ) -> dict[str, list[DiscountSubscription]]:
        """The discounts of each of these contracts that has any, in the order given,
        with one query per 2,000 contracts (billing reads them per batch)."""
        found: dict[str, list[DiscountSubscription]] = {}
        for chunk in batched(set(contract_ids), 2_000):
            query = (
                select(
                    ContractDiscountRow.contract_id, ContractDiscountRow.first_period, DiscountRow
                )
                .join(DiscountRow, DiscountRow.id == ContractDiscountRow.discount_id)
                .where(
                    DiscountRow.seller_id == self.seller_id,
                    ContractDiscountRow.contract_id.in_(chunk),
                )
                .order_by(ContractDiscountRow.contract_id, ContractDiscountRow.position)
            )
            for contract_id, first_period, row in self._session.execute(query):
                subscription = DiscountSubscription(_discount(row), first_period)
                found.setdefault(contract_id, []).append(subscription)
        return found


def _discount(row: DiscountRow) -> Discount:
    return Discount(
        id=row.id,
        name=row.name,
        applies_to=DiscountTarget(row.applies_to),
        percentage=row.percentage,
        amount=row.amount,
        periods=row.periods,
    )


def _stored_discount(row: DiscountRow) -> StoredDiscount:
    return StoredDiscount(_discount(row), row.created_at)


def _stored_coupon(row: CouponRow) -> StoredCoupon:
    coupon = Coupon(
        code=row.code,
        discount_id=row.discount_id,
        max_redemptions=row.max_redemptions,
        valid_until=row.valid_until,
        redemptions=row.redemptions,
    )
    return StoredCoupon(row.id, row.created_at, coupon)

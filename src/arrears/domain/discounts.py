"""Discounts and coupons (SPEC §11): what a discount takes off a period, and the wire
format of both. Pure: no I/O.

A discount is a percentage or an amount, on all lines, on usage or on the recurring
fee, for `Periods` billing periods from the one its subscription starts in (or every
period). It is a negative `Discount` line, before tax, one per discount and invoice.

How much, where SPEC §11 leaves it open:

- **Per period, shared by its invoices.** Like free quota and tiers, a discount is
  computed on everything the period's invoices charged so far (`period_discounts`),
  and an invoice's `Discount` line is that less what the period's earlier invoices
  already took off. Summed over a period's invoices, discount lines are exactly the
  discount of the whole period: a fixed 50.00 is taken off once per period, not once
  per interim invoice. (When a later invoice lowers the period's charges, as a volume
  tier's re-pricing can, the line gives back what no longer applies: it is positive.)
- **Percentages before fixed amounts**, each in the order given; a percentage is of
  the lines it applies to, rounded half-up to the currency once.
- **Never below zero.** A discount takes at most what is left of the lines it applies
  to after earlier discounts of the same `AppliesTo`, and at most what is left of the
  period's subtotal: a fixed 50.00 on a 30.00 invoice takes 30.00, the subtotal is
  0.00. A discount never makes an invoice's subtotal negative either.
- `Usage` discounts apply to every `Usage` line (late and override lines too),
  `RecurringFee` discounts to the recurring fee, `All` to every line but discounts.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, localcontext
from typing import Final

from arrears.domain.decimal_fields import decimal_field, join, price_field
from arrears.domain.errors import Conflict, FieldError, Invalid
from arrears.domain.grammar import NotInGrammar, parse_instant
from arrears.domain.invoices import InvoiceLine, LineKind
from arrears.domain.limits import MAX_PERIOD_QUANTITY
from arrears.domain.money import PRICE_PLACES, Currency, round_amount

__all__ = [
    "Coupon",
    "Discount",
    "DiscountSubscription",
    "DiscountTarget",
    "check_redeemable",
    "discount_lines",
    "parse_coupon",
    "parse_discount",
    "period_discounts",
]

_EXACT: Final = Context(prec=100, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Inexact])
_ZERO: Final = Decimal(0)
_ONE: Final = Decimal(1)
_HUNDRED: Final = Decimal(100)
_MAX_TEXT: Final = 200
_MAX_REDEMPTIONS: Final = 10**9


class DiscountTarget(enum.StrEnum):
    """The lines a discount applies to; the values are the SPEC's `AppliesTo` names."""

    ALL = "All"
    USAGE = "Usage"
    RECURRING_FEE = "RecurringFee"

    def applies_to(self, line: InvoiceLine) -> bool:
        """Whether a discount on this target is computed on `line`."""
        if line.kind is LineKind.DISCOUNT:
            return False
        if self is DiscountTarget.USAGE:
            return line.kind is LineKind.USAGE
        if self is DiscountTarget.RECURRING_FEE:
            return line.kind is LineKind.RECURRING_FEE
        return True


@dataclass(frozen=True, slots=True)
class Discount:
    """`percentage` (0 < p <= 100) or `amount` (> 0) off the lines of `applies_to`,
    for `periods` billing periods (None: every period). Exactly one of the two is set."""

    id: str
    name: str
    applies_to: DiscountTarget
    percentage: Decimal | None = None
    amount: Decimal | None = None
    periods: int | None = None

    def __post_init__(self) -> None:
        if (self.percentage is None) == (self.amount is None):
            raise ValueError("a discount is a percentage or an amount, exactly one")
        if self.percentage is not None and not _ZERO < self.percentage <= _HUNDRED:
            raise ValueError(f"a percentage must be in (0, 100], not {self.percentage}")
        if self.amount is not None and not (self.amount.is_finite() and self.amount > 0):
            raise ValueError(f"a discount amount must be positive, not {self.amount}")
        if self.periods is not None and self.periods < 1:
            raise ValueError(f"a discount lasts at least one period, not {self.periods}")


@dataclass(frozen=True, slots=True)
class DiscountSubscription:
    """A contract's discount from `first_period` on (the index of the billing period
    its order's `ChangeDate` falls in, `periods.period_index_at`)."""

    discount: Discount
    first_period: int

    def applies_in(self, period_index: int) -> bool:
        """Whether the period `period_index` is discounted: one of the discount's
        `periods` from `first_period` (20 % off for 2 periods from period 1: periods 1
        and 2, not 3), or any from `first_period` on when it lasts every period."""
        if period_index < self.first_period:
            return False
        periods = self.discount.periods
        return periods is None or period_index < self.first_period + periods


def period_discounts(
    discounts: Sequence[Discount], lines: Iterable[InvoiceLine], currency: Currency
) -> dict[str, Decimal]:
    """What each discount takes off a period whose invoices charged `lines` (discount
    lines among them are ignored), by discount id: rounded, >= 0, together never more
    than the lines' subtotal (nothing when it is negative). See the module doc."""
    charged = [line for line in lines if line.kind is not LineKind.DISCOUNT]
    taken: dict[str, Decimal] = {}
    used: dict[DiscountTarget, Decimal] = {}
    with localcontext(_EXACT):
        remaining = max(_ZERO, sum((line.amount for line in charged), _ZERO))
        # sorted() is stable: percentages first, each group in the order given.
        for discount in sorted(discounts, key=lambda d: d.percentage is None):
            target = discount.applies_to
            base = sum((line.amount for line in charged if target.applies_to(line)), _ZERO)
            if discount.percentage is not None:
                wanted = round_amount(base * discount.percentage / _HUNDRED, currency)
            else:
                wanted = round_amount(discount.amount or _ZERO, currency)
            room = min(max(_ZERO, base - used.get(target, _ZERO)), remaining)
            value = max(_ZERO, min(wanted, room))
            used[target] = used.get(target, _ZERO) + value
            remaining -= value
            taken[discount.id] = taken.get(discount.id, _ZERO) + value
    return taken


def discount_lines(
    discounts: Sequence[Discount],
    earlier: Iterable[InvoiceLine],
    lines: Iterable[InvoiceLine],
    currency: Currency,
) -> tuple[InvoiceLine, ...]:
    """The `Discount` lines of an invoice of `lines` (its other lines), after the
    period's `earlier` invoices' lines, for the `discounts` the period has (those
    whose `DiscountSubscription.applies_in` it).

    One line per discount whose share on this invoice is not zero, in the order of
    `discounts`: `-(period_discounts(earlier + lines) - what earlier Discount lines
    of it took off)`. Summed over the period's invoices, a discount's lines are
    exactly `-period_discounts(every line of the period)`.
    """
    before = tuple(earlier)
    granted: dict[str, Decimal] = {}
    with localcontext(_EXACT):
        for line in before:
            if line.kind is LineKind.DISCOUNT and line.discount_id is not None:
                granted[line.discount_id] = granted.get(line.discount_id, _ZERO) - line.amount
        totals = period_discounts(discounts, (*before, *lines), currency)
        made: list[InvoiceLine] = []
        for discount in dict.fromkeys(discounts):
            now = totals[discount.id] - granted.get(discount.id, _ZERO)
            if now:
                made.append(_discount_line(discount, -now))
    return tuple(made)


def _discount_line(discount: Discount, amount: Decimal) -> InvoiceLine:
    if discount.percentage is not None:
        text = f"{discount.name} ({discount.percentage.normalize():f} % off)"
    else:
        text = discount.name
    return InvoiceLine(
        kind=LineKind.DISCOUNT,
        description=text,
        quantity=_ONE,
        free_quantity=_ZERO,
        billable_quantity=_ONE,
        amount=amount,
        discount_id=discount.id,
    )


# ---------------------------------------------------------------- coupons


@dataclass(frozen=True, slots=True)
class Coupon:
    """A code that gives its discount to the contract that redeems it, at most
    `max_redemptions` times (None: unlimited) and up to `valid_until` (inclusive;
    None: no expiry). `redemptions` counts the times it was redeemed."""

    code: str
    discount_id: str
    max_redemptions: int | None = None
    valid_until: datetime | None = None
    redemptions: int = 0


def check_redeemable(coupon: Coupon, now: datetime) -> None:
    """Raises `Conflict` (409) when `coupon` is spent (`MaxRedemptions` reached) or
    expired (`now` after `ValidUntil`). The caller counts a redemption in the same
    transaction, under a lock or a guarded update, so that concurrent orders never
    redeem it more than `MaxRedemptions` times."""
    if coupon.max_redemptions is not None and coupon.redemptions >= coupon.max_redemptions:
        raise Conflict(
            f"Coupon {coupon.code} is spent: it was redeemed {coupon.redemptions} times."
        )
    if coupon.valid_until is not None and now > coupon.valid_until:
        raise Conflict(f"Coupon {coupon.code} expired at {coupon.valid_until.isoformat()}.")


# ---------------------------------------------------------------- wire format (SPEC §11)

_DISCOUNT_FIELDS: Final = ("Name", "Percentage", "Amount", "Periods", "AppliesTo")
_COUPON_FIELDS: Final = ("Code", "DiscountId", "MaxRedemptions", "ValidUntil")
_TARGETS: Final[Mapping[str, DiscountTarget]] = {t.value: t for t in DiscountTarget}


def parse_discount(data: object, *, discount_id: str) -> Discount:
    """The `Discount` with id `discount_id` that the body of `POST /api/v1/discounts`
    describes: `{"Name", "Percentage" | "Amount", "Periods"?, "AppliesTo"}`.

    Raises `Invalid` naming every bad field at once. Codes: `not_an_object`,
    `required`, `unknown_field`, `not_a_string`, `too_long`, `not_a_decimal`,
    `not_positive`, `too_large`, `too_many_decimals`, `one_of` (both or neither of
    Percentage and Amount), `not_an_integer`, `unknown_value`.
    """
    if not isinstance(data, Mapping):
        raise Invalid.one("", "not_an_object", "A discount must be a JSON object.")
    errors = _unknown(data, _DISCOUNT_FIELDS)
    name = _text(data, "Name", errors)
    percentage = _percentage(data, errors)
    amount = _positive_price(data, "Amount", errors)
    # A field sent as null is absent, as the OpenAPI (nullable, default null) says.
    if (data.get("Percentage") is None) == (data.get("Amount") is None):
        errors.append(
            FieldError("Percentage", "one_of", "Give exactly one of Percentage and Amount.")
        )
    periods = _count(data, "Periods", errors, maximum=MAX_PERIOD_QUANTITY)
    target = _TARGETS.get(str(data.get("AppliesTo")))
    if "AppliesTo" not in data:
        errors.append(FieldError("AppliesTo", "required", "AppliesTo is required."))
    elif target is None:
        errors.append(
            FieldError(
                "AppliesTo", "unknown_value", f"AppliesTo must be one of {', '.join(_TARGETS)}."
            )
        )
    if errors:
        raise Invalid(errors)
    if name is None or target is None:
        raise AssertionError("validated discount without a name or target")
    return Discount(discount_id, name, target, percentage, amount, periods)


def parse_coupon(data: object) -> Coupon:
    """The `Coupon` the body of `POST /api/v1/coupons` describes: `{"Code",
    "DiscountId", "MaxRedemptions"?, "ValidUntil"?}` (that the discount exists is the
    caller's check). Raises `Invalid` naming every bad field at once; codes as
    `parse_discount`, and those of `grammar.parse_instant` for `ValidUntil`."""
    if not isinstance(data, Mapping):
        raise Invalid.one("", "not_an_object", "A coupon must be a JSON object.")
    errors = _unknown(data, _COUPON_FIELDS)
    code = _text(data, "Code", errors)
    discount_id = _text(data, "DiscountId", errors)
    max_redemptions = _count(data, "MaxRedemptions", errors, maximum=_MAX_REDEMPTIONS)
    valid_until: datetime | None = None
    if data.get("ValidUntil") is not None:
        try:
            valid_until = parse_instant(data["ValidUntil"])
        except NotInGrammar as fault:
            errors.append(FieldError("ValidUntil", fault.code, fault.message))
    if errors:
        raise Invalid(errors)
    if code is None or discount_id is None:
        raise AssertionError("validated coupon without a code or discount")
    return Coupon(code, discount_id, max_redemptions, valid_until)


def _unknown(data: Mapping[str, object], known: tuple[str, ...]) -> list[FieldError]:
    return [
        FieldError(str(key), "unknown_field", f"{key} is not a field.")
        for key in data
        if key not in known
    ]


def _text(data: Mapping[str, object], name: str, errors: list[FieldError]) -> str | None:
    value = data.get(name)
    if name not in data or value == "":
        errors.append(FieldError(name, "required", f"{name} is required."))
    elif not isinstance(value, str):
        errors.append(FieldError(name, "not_a_string", f"{name} must be a string."))
    elif len(value) > _MAX_TEXT:
        errors.append(FieldError(name, "too_long", f"{name} holds at most {_MAX_TEXT} characters."))
    else:
        return value
    return None


def _percentage(data: Mapping[str, object], errors: list[FieldError]) -> Decimal | None:
    if data.get("Percentage") is None:
        return None
    value = decimal_field(
        data["Percentage"], "Percentage", errors, places=PRICE_PLACES, positive=True
    )
    if value is not None and value > _HUNDRED:
        errors.append(FieldError("Percentage", "too_large", "Percentage must be at most 100."))
        return None
    return value


def _positive_price(
    data: Mapping[str, object], name: str, errors: list[FieldError]
) -> Decimal | None:
    if data.get(name) is None:
        return None
    value = price_field(data, name, "", errors)
    if value is not None and value <= 0:
        errors.append(FieldError(join("", name), "not_positive", f"{name} must be greater than 0."))
        return None
    return value


def _count(
    data: Mapping[str, object], name: str, errors: list[FieldError], *, maximum: int
) -> int | None:
    """An optional whole number from 1 to `maximum` (null is absent)."""
    raw = data.get(name)
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        count: int | None = raw
    elif isinstance(raw, Decimal) and raw.is_finite() and raw == raw.to_integral_value():
        # 1E+999999999 is a valid decimal; int() of it would build a billion digits.
        count = int(raw) if raw.adjusted() < 18 else maximum + 1
    else:
        count = None
    if count is None or not 1 <= count <= maximum:
        message = f"{name} must be a whole number from 1 to {maximum}."
        errors.append(FieldError(name, "not_an_integer", message))
        return None
    return count

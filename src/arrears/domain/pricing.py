"""The four pricing models of a metered component, and rating a quantity against them.

Rating is exact `Decimal` arithmetic and never rounds: a `Charge` is rounded once, per
invoice line, by `arrears.domain.money.round_amount`. Free quota is applied by the
caller before rating (`billable_quantity`), because late usage is rated without it.

A graduated or volume tier may carry a flat fee (SPEC §11), charged once when the
quantity reaches the tier: for Graduated every tier reached, for Volume the tier the
quantity falls in. A quantity of 0 reaches the first tier, so a first tier's flat fee
is the price of no usage at all. With tiers up to 5 (flat 100), up to 10 (flat 50),
up to 15 (10.00 each) and above (5.00 each), graduated 0 -> 100, 5 -> 100, 7 -> 150,
12 -> 170, 22 -> 235; volume with 150 as the second flat fee 0 -> 100, 14 -> 140,
16 -> 80, 100 -> 500.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, localcontext
from typing import Final, TypeAlias, assert_never

from arrears.domain.decimal_fields import join, price_field, quantity_field
from arrears.domain.errors import FieldError, Invalid

__all__ = [
    "MAX_TIERS",
    "Charge",
    "Graduated",
    "Package",
    "PerUnit",
    "Pricing",
    "Tier",
    "TierCharge",
    "Volume",
    "billable_quantity",
    "line_unit_price",
    "parse_pricing",
    "price",
    "pricing_to_json",
    "without_flat_fees",
]

MAX_TIERS: Final = 100
"""A graduated or volume pricing has at most this many tiers."""

# A validated price has at most 21 significant digits, so a quantity would need about
# 80 before a product stopped being exact at this precision; trapping Inexact turns
# such an impossible operand into an error instead of silently rounded money.
_EXACT = Context(prec=100, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Inexact])


@dataclass(frozen=True, slots=True)
class Tier:
    """Units up to and including `up_to` (the previous tier's `up_to` excluded).

    `up_to` is None for the open-ended last tier. `flat_fee`, when set, is charged
    once per period when the period's quantity reaches the tier (see the module doc).
    """

    up_to: Decimal | None
    price_per_unit: Decimal
    flat_fee: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PerUnit:
    """Every unit at one price."""

    price_per_unit: Decimal

    def __post_init__(self) -> None:
        _require_price(self.price_per_unit)


@dataclass(frozen=True, slots=True)
class Graduated:
    """Each unit priced by the tier it falls in (1,500 units over 1000 @0.10 and
    open @0.05 cost 1000 x 0.10 + 500 x 0.05)."""

    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        _require_tiers(self.tiers)


@dataclass(frozen=True, slots=True)
class Volume:
    """All units priced by the tier the total falls in (a total equal to a tier's
    `up_to` belongs to that tier)."""

    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        _require_tiers(self.tiers)


@dataclass(frozen=True, slots=True)
class Package:
    """Units sold in packages of `package_size`; a started package is charged whole."""

    package_size: Decimal
    price_per_package: Decimal

    def __post_init__(self) -> None:
        if not (self.package_size.is_finite() and self.package_size > 0):
            raise ValueError(f"package size must be positive, not {self.package_size}")
        _require_price(self.price_per_package)


Pricing: TypeAlias = PerUnit | Graduated | Volume | Package


@dataclass(frozen=True, slots=True)
class TierCharge:
    """One part of a charge: `quantity` x `unit_price` + `flat_fee` = `amount`, exactly.

    For `Package`, `quantity` counts packages and `unit_price` is the package price.
    `flat_fee` is the tier's flat fee when the charge reaches the tier, else 0.
    """

    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    flat_fee: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Charge:
    """The exact, unrounded price of a quantity.

    `amount` equals the sum of the `tiers` amounts exactly. `tiers` lists only the
    parts with a quantity or a flat fee above zero, in tier order: none for a quantity
    of 0 without a first-tier flat fee, at most one for `PerUnit`, `Volume` and
    `Package`, one or more for `Graduated`.
    """

    amount: Decimal
    tiers: tuple[TierCharge, ...]


def price(pricing: Pricing, quantity: Decimal) -> Charge:
    """Rate `quantity` against `pricing`, exactly and without rounding.

    `quantity` must be a finite decimal >= 0 (`ValueError` otherwise: quantities are
    validated before they get here). The amount is >= 0, and for `Graduated` it never
    decreases as the quantity grows. Without flat fees, a quantity of 0 costs 0.
    """
    if not quantity.is_finite() or quantity < 0:
        raise ValueError(f"a quantity to price must be finite and >= 0, not {quantity}")
    with localcontext(_EXACT):
        if isinstance(pricing, PerUnit):
            parts = [_part(quantity, pricing.price_per_unit)]
        elif isinstance(pricing, Graduated):
            parts = _graduated(pricing.tiers, quantity)
        elif isinstance(pricing, Volume):
            tier = _volume_tier(pricing.tiers, quantity)
            parts = [_part(quantity, tier.price_per_unit, tier.flat_fee)]
        elif isinstance(pricing, Package):
            packages, rest = divmod(quantity, pricing.package_size)
            if rest:
                packages += 1
            parts = [_part(packages, pricing.price_per_package)]
        else:
            assert_never(pricing)
        kept = tuple(p for p in parts if p.quantity or p.flat_fee)
        return Charge(amount=sum((p.amount for p in kept), Decimal(0)), tiers=kept)


def billable_quantity(quantity: Decimal, free_quota: Decimal) -> Decimal:
    """The part of `quantity` left to charge after `free_quota`: max(0, quantity - free_quota).

    Both must be finite and >= 0 (`ValueError` otherwise). Exact.
    """
    for name, value in (("quantity", quantity), ("free quota", free_quota)):
        if not value.is_finite() or value < 0:
            raise ValueError(f"{name} must be finite and >= 0, not {value}")
    with localcontext(_EXACT):
        return max(Decimal(0), quantity - free_quota)


def _part(quantity: Decimal, unit_price: Decimal, flat_fee: Decimal | None = None) -> TierCharge:
    flat = flat_fee or Decimal(0)
    amount = quantity * unit_price + flat
    return TierCharge(quantity=quantity, unit_price=unit_price, amount=amount, flat_fee=flat)


def _graduated(tiers: tuple[Tier, ...], quantity: Decimal) -> list[TierCharge]:
    parts: list[TierCharge] = []
    lower = Decimal(0)
    for index, tier in enumerate(tiers):
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        # A tier is reached by a unit in it; the first tier also by a quantity of 0.
        if upper > lower or index == 0:
            parts.append(_part(upper - lower, tier.price_per_unit, tier.flat_fee))
        if tier.up_to is None or quantity <= tier.up_to:
            break
        lower = tier.up_to
    return parts


def line_unit_price(pricing: Pricing, quantity: Decimal) -> Decimal | None:
    """The one price per unit that an invoice line of `quantity` (the total that decides
    the tier) is charged at: PerUnit's price, or the Volume tier `quantity` falls in.
    None where no single unit price exists (Graduated: several tiers; Package: a price
    per package; a Volume tier with a flat fee); the line's tiers then show the parts."""
    if isinstance(pricing, PerUnit):
        return pricing.price_per_unit
    if isinstance(pricing, Volume):
        tier = _volume_tier(pricing.tiers, quantity)
        return tier.price_per_unit if tier.flat_fee is None else None
    return None


def without_flat_fees(pricing: Pricing) -> Pricing:
    """`pricing` with no tier's flat fee: the same pricing when it has none."""
    if isinstance(pricing, Graduated | Volume) and any(t.flat_fee for t in pricing.tiers):
        tiers = tuple(Tier(t.up_to, t.price_per_unit) for t in pricing.tiers)
        return type(pricing)(tiers)
    return pricing


def _volume_tier(tiers: tuple[Tier, ...], quantity: Decimal) -> Tier:
    for tier in tiers:
        if tier.up_to is None or quantity <= tier.up_to:
            return tier
    # Unreachable: the last tier is open-ended, which Volume checks on construction.
    raise AssertionError("volume tiers without an open-ended last tier")


def _require_price(value: Decimal) -> None:
    if not (value.is_finite() and value >= 0):
        raise ValueError(f"a price must be finite and >= 0, not {value}")


def _require_tiers(tiers: tuple[Tier, ...]) -> None:
    # Programming-error guard; parse_pricing reports the same rules field by field.
    if not tiers or tiers[-1].up_to is not None:
        raise ValueError("tiers must end with exactly one open-ended tier")
    previous = Decimal(0)
    for tier in tiers[:-1]:
        if tier.up_to is None or not tier.up_to.is_finite() or tier.up_to <= previous:
            raise ValueError("tier bounds must be positive, finite and ascending")
        previous = tier.up_to
    for tier in tiers:
        _require_price(tier.price_per_unit)
        if tier.flat_fee is not None:
            _require_price(tier.flat_fee)


# ---------------------------------------------------------------- wire format (SPEC §3)

_MODEL_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "PerUnit": ("PricePerUnit",),
    "Graduated": ("Tiers",),
    "Volume": ("Tiers",),
    "Package": ("PackageSize", "PricePerPackage"),
}
_PRICING_FIELDS: Final = frozenset({"Model"}.union(*_MODEL_FIELDS.values()))
_TIER_FIELDS: Final = ("UpTo", "PricePerUnit", "FlatFee")


def parse_pricing(data: object, *, at: str = "") -> Pricing:
    """The `Pricing` described by the SPEC §3 JSON object `data`.

    Numbers must already be `Decimal` or `int`, or strings of the decimal grammar
    (`grammar.parse_decimal`); a `float` or `bool` is rejected, so that binary floating
    point never reaches money. On any violation raises `Invalid`
    naming every bad field at once, with paths relative to the pricing object
    (`Model`, `Tiers[1].UpTo`), each prefixed by `at` and a dot when `at` is given.
    A problem with `data` itself is reported on `at`.

    Codes: `not_an_object`, `required`, `unknown_field`, `unknown_model`,
    `not_a_decimal`, `negative`, `not_positive`, `too_large`,
    `too_many_decimals`, `not_a_list`, `too_many`, `not_ascending`,
    `open_tier_not_last`, `missing_open_tier`. A tier's `FlatFee` is optional (null
    is none) and follows the rules of a price.

    The result satisfies `parse_pricing(pricing_to_json(p)) == p`.
    """
    if not isinstance(data, Mapping):
        raise Invalid.one(at, "not_an_object", "Pricing must be a JSON object.")
    errors: list[FieldError] = []

    model = _model(data, at, errors)

    # Every known field present is checked on its own, whatever the model, so that a
    # request with a bad Model still learns about its other mistakes in one round trip.
    price_per_unit = price_field(data, "PricePerUnit", at, errors)
    price_per_package = price_field(data, "PricePerPackage", at, errors)
    package_size = quantity_field(data, "PackageSize", at, errors, positive=True)
    tiers = _tiers(data, at, errors) if "Tiers" in data else None

    if errors:
        raise Invalid(errors)
    # With no errors, the model and its required fields are present and valid.
    match model:
        case "PerUnit" if price_per_unit is not None:
            return PerUnit(price_per_unit)
        case "Graduated" if tiers is not None:
            return Graduated(tiers)
        case "Volume" if tiers is not None:
            return Volume(tiers)
        case "Package" if package_size is not None and price_per_package is not None:
            return Package(package_size, price_per_package)
    raise AssertionError(f"validated pricing without a model: {model!r}")


def _model(data: Mapping[str, object], at: str, errors: list[FieldError]) -> str | None:
    """The pricing's valid `Model` (None if missing or unknown); appends an error for
    a missing or unknown model, each unknown field, and each field the model needs."""
    model = data.get("Model")
    if "Model" not in data:
        errors.append(FieldError(join(at, "Model"), "required", "Model is required."))
    elif not isinstance(model, str) or model not in _MODEL_FIELDS:
        errors.append(
            FieldError(
                join(at, "Model"),
                "unknown_model",
                f"Model must be one of {', '.join(_MODEL_FIELDS)}.",
            )
        )
        model = None

    for key in data:
        if key not in _PRICING_FIELDS:
            errors.append(FieldError(join(at, str(key)), "unknown_field", f"{key} is not a field."))
        elif isinstance(model, str) and key != "Model" and key not in _MODEL_FIELDS[model]:
            errors.append(
                FieldError(
                    join(at, key),
                    "unknown_field",
                    f"{key} is not a field of the {model} model.",
                )
            )
    if isinstance(model, str):
        errors.extend(
            FieldError(join(at, name), "required", f"{name} is required for {model}.")
            for name in _MODEL_FIELDS[model]
            if name not in data
        )
    return model if isinstance(model, str) else None


def pricing_to_json(pricing: Pricing) -> dict[str, object]:
    """`pricing` as its SPEC §3 JSON object, with `Decimal` numbers and None for null."""
    if isinstance(pricing, PerUnit):
        return {"Model": "PerUnit", "PricePerUnit": pricing.price_per_unit}
    if isinstance(pricing, Package):
        return {
            "Model": "Package",
            "PackageSize": pricing.package_size,
            "PricePerPackage": pricing.price_per_package,
        }
    if isinstance(pricing, Graduated | Volume):
        return {
            "Model": type(pricing).__name__,
            "Tiers": [_tier_to_json(tier) for tier in pricing.tiers],
        }
    assert_never(pricing)


def _tier_to_json(tier: Tier) -> dict[str, object]:
    # FlatFee only where set, so that tiers without one read as they always have.
    flat = {} if tier.flat_fee is None else {"FlatFee": tier.flat_fee}
    return {"UpTo": tier.up_to, "PricePerUnit": tier.price_per_unit, **flat}


def _tiers(
    data: Mapping[str, object], at: str, errors: list[FieldError]
) -> tuple[Tier, ...] | None:
    field = join(at, "Tiers")
    raw = data["Tiers"]
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
        errors.append(FieldError(field, "not_a_list", "Tiers must be a list of tiers."))
        return None
    if len(raw) > MAX_TIERS:
        errors.append(FieldError(field, "too_many", f"Tiers holds at most {MAX_TIERS} tiers."))
        return None
    if not raw:
        errors.append(
            FieldError(
                field,
                "missing_open_tier",
                'Tiers must not be empty; the last tier has "UpTo": null.',
            )
        )
        return None

    count = len(errors)
    tiers: list[Tier] = []
    highest: Decimal | None = None  # the largest valid bound so far, to judge ascent
    for index, item in enumerate(raw):
        path = f"{field}[{index}]"
        if not isinstance(item, Mapping):
            errors.append(FieldError(path, "not_an_object", "A tier must be a JSON object."))
            continue
        up_to, tier_price = _tier(item, path, errors, is_last=index == len(raw) - 1)
        # A null FlatFee is no flat fee, like a tier without the field.
        flat_fee = (
            None if item.get("FlatFee") is None else price_field(item, "FlatFee", path, errors)
        )
        if up_to is not None:
            if highest is not None and up_to <= highest:
                errors.append(
                    FieldError(
                        f"{path}.UpTo",
                        "not_ascending",
                        f"UpTo must be greater than the previous tier's UpTo ({highest}).",
                    )
                )
            highest = up_to if highest is None else max(highest, up_to)
        if tier_price is not None:
            tiers.append(Tier(up_to=up_to, price_per_unit=tier_price, flat_fee=flat_fee))
    last = raw[-1]
    if isinstance(last, Mapping) and last.get("UpTo") is not None:
        errors.append(
            FieldError(
                field, "missing_open_tier", 'The last tier must be open-ended ("UpTo": null).'
            )
        )
    # Tiers are only built from a fully valid list; a partial list would misprice.
    return tuple(tiers) if len(errors) == count else None


def _tier(
    item: Mapping[str, object],
    path: str,
    errors: list[FieldError],
    *,
    is_last: bool,
) -> tuple[Decimal | None, Decimal | None]:
    """The tier's valid `UpTo` (None if open or bad) and valid price (None if bad)."""
    errors.extend(
        FieldError(f"{path}.{key}", "unknown_field", f"{key} is not a field of a tier.")
        for key in item
        if key not in _TIER_FIELDS
    )
    if "PricePerUnit" not in item:
        errors.append(FieldError(f"{path}.PricePerUnit", "required", "PricePerUnit is required."))
    tier_price = price_field(item, "PricePerUnit", path, errors)

    if "UpTo" not in item:
        errors.append(
            FieldError(
                f"{path}.UpTo", "required", "UpTo is required (null for the open-ended last tier)."
            )
        )
        return None, tier_price
    if item["UpTo"] is None:
        if not is_last:
            errors.append(
                FieldError(
                    f"{path}.UpTo",
                    "open_tier_not_last",
                    "Only the last tier may be open-ended (UpTo null).",
                )
            )
        return None, tier_price
    return quantity_field(item, "UpTo", path, errors, positive=True), tier_price

"""Quantity components (SPEC §11): seats, licences and other quantities a contract
holds over time, billed in arrears for the exact fraction of the period each was held.
Pure: no I/O.

An order's `Cart.ComponentSubscriptions: [{"ComponentId", "Quantity"}]` sets the
quantity of a component from its `ChangeDate` on; the plan variant of the phase prices
it (`QuantityComponents: [{"ComponentId", "PricePerUnit"}]`, per unit and period).
A period's closing invoice (regular or final) has one `Quantity` line per stretch of
the period in which the quantity and its price stayed the same: 10 seats from day 1
and 15 from day 16 of a 30-day period at 4.00 are 10 x 4.00 x 15/30 = 20.00 and
15 x 4.00 x 15/30 = 30.00. A stretch's amount is exact until rounded once, with
`money.round_amount`. Interim invoices bill no quantities: a quantity is billed when
the time it was held is over, and only its period's close knows all of it. A plan
change cuts a stretch too, since the price may change; a quantity of 0 or a component
that the phase's variant does not price is not billed.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, localcontext
from typing import Final

from arrears.domain.catalog import ComponentKind, PlanVariant
from arrears.domain.decimal_fields import quantity_field
from arrears.domain.errors import FieldError, Invalid
from arrears.domain.invoices import InvoiceLine, LineKind
from arrears.domain.money import Currency, round_amount
from arrears.domain.periods import prorate
from arrears.domain.phases import Phase, PhaseWindow, phase_windows
from arrears.domain.wire import ORDER_COMPONENT_SUBSCRIPTIONS

__all__ = [
    "ComponentSubscription",
    "check_component_subscriptions",
    "parse_component_subscriptions",
    "quantity_lines",
]

_ZERO: Final = Decimal(0)
# Quantities and prices are bounded (money.MAX_INTEGER_DIGITS, 6 places): exact here.
_EXACT: Final = Context(prec=100, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Inexact])


@dataclass(frozen=True, slots=True)
class ComponentSubscription:
    """The contract holds `quantity` of component `component_id` from `starts` on,
    until a later subscription of the same component."""

    component_id: str
    quantity: Decimal
    starts: datetime

    def __post_init__(self) -> None:
        if not (self.quantity.is_finite() and self.quantity >= 0):
            raise ValueError(f"a quantity held must be finite and >= 0, not {self.quantity}")


def quantity_lines(
    *,
    subscriptions: Sequence[ComponentSubscription],
    phases: Sequence[Phase],
    period_start: datetime,
    period_end: datetime,
    currency: Currency,
    end_date: datetime | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> tuple[InvoiceLine, ...]:
    """The `Quantity` lines of the closing invoice of `[period_start, period_end)`
    (cut at `end_date` for a final invoice): per component, in the order the
    `subscriptions` first name them, one line per stretch, in time order. Of two
    subscriptions of a component from the same instant, the later one in
    `subscriptions` holds. `descriptions` maps a component id to its text."""
    windows = phase_windows(phases, period_start, period_end, end_date=end_date)
    texts = descriptions or {}
    lines: list[InvoiceLine] = []
    for component_id in dict.fromkeys(s.component_id for s in subscriptions):
        held = sorted(
            (s for s in subscriptions if s.component_id == component_id), key=lambda s: s.starts
        )
        text = texts.get(component_id, component_id)
        for window in windows:
            lines.extend(_stretch_lines(component_id, text, held, window, currency))
    return tuple(lines)


def _stretch_lines(
    component_id: str,
    text: str,
    held: Sequence[ComponentSubscription],
    window: PhaseWindow,
    currency: Currency,
) -> list[InvoiceLine]:
    price = window.phase.plan_variant.quantity_price(component_id)
    if price is None:
        return []
    inside = {s.starts for s in held if window.start < s.starts < window.end}
    cuts = sorted({window.start, window.end} | inside)
    lines: list[InvoiceLine] = []
    for start, end in itertools.pairwise(cuts):
        quantity = _held_at(held, start)
        if not quantity:
            continue
        with localcontext(_EXACT):
            per_period = quantity * price
        # The stretch's share of the period, divided once (`periods.prorate`).
        length = window.period_start + (end - start)
        exact = prorate(per_period, window.period_start, window.period_end, length)
        lines.append(
            InvoiceLine(
                kind=LineKind.QUANTITY,
                component_id=component_id,
                description=f"{text} {start.date().isoformat()} - {end.date().isoformat()}",
                quantity=quantity,
                free_quantity=_ZERO,
                billable_quantity=quantity,
                unit_price=price,
                amount=round_amount(exact, currency),
                phase_from=window.phase.starts,
            )
        )
    return lines


def _held_at(held: Sequence[ComponentSubscription], instant: datetime) -> Decimal:
    quantity = _ZERO
    for subscription in held:
        if subscription.starts <= instant:
            quantity = subscription.quantity
    return quantity


def parse_component_subscriptions(
    data: object, *, starts: datetime, at: str = ORDER_COMPONENT_SUBSCRIPTIONS
) -> tuple[ComponentSubscription, ...]:
    """The subscriptions an order's `Cart.ComponentSubscriptions` list
    (`[{"ComponentId", "Quantity"}]`) sets, each from `starts` (the order's
    `ChangeDate`, default now). `Quantity` is a quantity >= 0. Raises `Invalid` naming
    every bad field (`Cart.ComponentSubscriptions[1].Quantity`) at once."""
    if isinstance(data, str | bytes) or not isinstance(data, Sequence):
        raise Invalid.one(at, "not_a_list", "ComponentSubscriptions must be a list.")
    errors: list[FieldError] = []
    made: list[ComponentSubscription] = []
    for index, item in enumerate(data):
        path = f"{at}[{index}]"
        if not isinstance(item, Mapping):
            errors.append(FieldError(path, "not_an_object", "Each must be a JSON object."))
            continue
        errors.extend(
            FieldError(f"{path}.{key}", "unknown_field", f"{key} is not a field.")
            for key in item
            if key not in ("ComponentId", "Quantity")
        )
        component_id = item.get("ComponentId")
        if not isinstance(component_id, str) or not component_id:
            errors.append(FieldError(f"{path}.ComponentId", "required", "ComponentId is required."))
        if "Quantity" not in item:
            errors.append(FieldError(f"{path}.Quantity", "required", "Quantity is required."))
        quantity = quantity_field(item, "Quantity", path, errors, positive=False)
        if isinstance(component_id, str) and component_id and quantity is not None:
            made.append(ComponentSubscription(component_id, quantity, starts))
    if errors:
        raise Invalid(errors)
    return tuple(made)


def check_component_subscriptions(
    subscriptions: Sequence[ComponentSubscription],
    variant: PlanVariant,
    kinds: Mapping[str, ComponentKind],
    *,
    at: str = ORDER_COMPONENT_SUBSCRIPTIONS,
) -> None:
    """Raises `Invalid` naming each subscription whose component is not a `Quantity`
    component (`kinds` maps the seller's component ids to their kind; an id not in it
    is unknown) or is not priced by `variant`, the plan variant it starts under."""
    errors: list[FieldError] = []
    for index, subscription in enumerate(subscriptions):
        field = f"{at}[{index}].ComponentId"
        kind = kinds.get(subscription.component_id)
        if kind is None:
            errors.append(FieldError(field, "not_found", "No such component."))
        elif kind is not ComponentKind.QUANTITY:
            errors.append(FieldError(field, "not_a_quantity", "The component is not a Quantity."))
        elif variant.quantity_price(subscription.component_id) is None:
            errors.append(
                FieldError(field, "not_in_plan_variant", "The plan variant does not price it.")
            )
    if errors:
        raise Invalid(errors)

"""Plan changes (SPEC §11): a contract's phases, and rating a period that several plan
variants cover. Pure: no I/O.

A contract's `Phases` are `[{"PlanVariantId", "From"}]`: the first from its
`StartDate`, one more for each plan change, from its `ChangeDate`. Within a billing
period:

- **Usage** is rated by the variant of the phase its `DueDate` falls in (usage due
  at a phase's `From` is the new variant's; usage due at the period's end, which
  SPEC §7 bills with the period, is its last phase's). Late usage is rated by the
  variant of the phase it was due in, like any late usage, without free quota.
- **Fees and free quotas** of each variant are prorated to the exact fraction of the
  period its phase covered (`periods.prorate`): a change on day 11 of a 30-day period
  from a 30.00 fee / 100 GB free / 0.10 per GB to a 60.00 fee / 500 GB free / 0.05 is
  fees of 10.00 and 40.00, free quotas of 33.333333 and 333.333333 GB (free quota
  rounded down to 6 decimals, never granting a millionth more than the fraction).
  A minimum commitment is prorated the same way (`phase_commitment`).
- **No tier position carries across variants**: each phase is rated on its own, as if
  it were a period of its own for tiers and flat fees, shared by the period's
  invoices through the lines each phase made (`InvoiceLine.phase_from`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Final

from arrears.domain.catalog import MeteredComponent, PlanVariant
from arrears.domain.errors import FieldError, Invalid
from arrears.domain.fees import recurring_fee_line
from arrears.domain.invoices import InvoiceLine
from arrears.domain.money import QUANTITY_PLACES, Currency, round_amount
from arrears.domain.periods import prorate
from arrears.domain.rating import PeriodCharges, rate_usage
from arrears.domain.usage import UsageEntry
from arrears.domain.wire import CHANGE_DATE, ORDER_PLAN_VARIANT_ID

__all__ = [
    "Phase",
    "PhaseWindow",
    "check_plan_change",
    "phase_commitment",
    "phase_components",
    "phase_fee_lines",
    "phase_of",
    "phase_windows",
    "rate_phases",
]

_ZERO: Final = Decimal(0)
_QUANTITY_QUANTUM: Final = Decimal(1).scaleb(-QUANTITY_PLACES)
_MICROSECOND: Final = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Phase:
    """The contract is on `plan_variant` from `starts` (its `From`) until the next
    phase starts."""

    plan_variant: PlanVariant
    starts: datetime


@dataclass(frozen=True, slots=True)
class PhaseWindow:
    """The part `[start, end)` of the billing period `[period_start, period_end)` that
    `phase` covers. A final invoice's windows end at the contract's `EndDate`."""

    phase: Phase
    start: datetime
    end: datetime
    period_start: datetime
    period_end: datetime

    def prorated(self, amount: Decimal) -> Decimal:
        """`amount` x the fraction of the period the window covers, exactly (one
        division, `periods.prorate`); not rounded."""
        return prorate(
            amount, self.period_start, self.period_end, self.period_start + (self.end - self.start)
        )

    @property
    def whole(self) -> bool:
        """Whether the window is the whole period."""
        return self.start == self.period_start and self.end == self.period_end


def phase_windows(
    phases: Sequence[Phase],
    period_start: datetime,
    period_end: datetime,
    *,
    end_date: datetime | None = None,
) -> tuple[PhaseWindow, ...]:
    """The windows of `phases` (ascending by `starts`, `ValueError` otherwise) in the
    period `[period_start, period_end)`, cut at `end_date` for a final invoice; a phase
    that covers none of it has no window. The windows tile `[period_start, cut)`
    when the first phase starts at or before `period_start`."""
    _check_ascending(phases)
    cut = period_end if end_date is None else min(end_date, period_end)
    windows: list[PhaseWindow] = []
    for index, phase in enumerate(phases):
        following = phases[index + 1].starts if index + 1 < len(phases) else cut
        start, end = max(phase.starts, period_start), min(following, cut)
        if start < end:
            windows.append(PhaseWindow(phase, start, end, period_start, period_end))
    return tuple(windows)


def phase_of(phases: Sequence[Phase], instant: datetime) -> Phase:
    """The phase `instant` falls in: the last that starts at or before it (the first
    phase for an instant before every phase). `phases` must not be empty."""
    if not phases:
        raise ValueError("a contract has at least one phase")
    chosen = phases[0]
    for phase in phases:
        if phase.starts <= instant:
            chosen = phase
    return chosen


def phase_components(window: PhaseWindow) -> tuple[MeteredComponent, ...]:
    """The metered components of the window's variant with each free quota prorated to
    the window (rounded down to `QUANTITY_PLACES`): 100 GB over 10 of 30 days is
    33.333333 GB."""
    return tuple(
        replace(c, free_quota=_free_quota(window.prorated(c.free_quota)))
        for c in window.phase.plan_variant.metered_components
    )


def phase_fee_lines(windows: Iterable[PhaseWindow], currency: Currency) -> tuple[InvoiceLine, ...]:
    """One `RecurringFee` line per window whose variant has a fee: the whole fee for a
    window that is the whole period, else the fee prorated to the window, rounded once
    (30.00 over 10 of 30 days is 10.00, 60.00 over 20 of them 40.00)."""
    lines: list[InvoiceLine] = []
    for window in windows:
        fee = window.phase.plan_variant.recurring_fee
        if fee is None:
            continue
        line = recurring_fee_line(fee, window.period_start, window.period_end, currency)
        if not window.whole:
            line = replace(
                line,
                description=(
                    f"Recurring fee {_day(window.start)} - {_day(window.end)}, "
                    f"{window.phase.plan_variant.name}, prorated from the period "
                    f"{_day(window.period_start)} - {_day(window.period_end)}"
                ),
                amount=round_amount(window.prorated(fee), currency),
                unit_price=None,
            )
        lines.append(replace(line, phase_from=window.phase.starts))
    return tuple(lines)


def phase_commitment(windows: Iterable[PhaseWindow]) -> Decimal | None:
    """The minimum commitment of a period its `windows` cover: each variant's
    `MinimumCommitment` prorated to its window, summed, not rounded (`fees.
    commitment_line` rounds it); None when no variant has one."""
    amounts = [
        window.prorated(window.phase.plan_variant.minimum_commitment)
        for window in windows
        if window.phase.plan_variant.minimum_commitment is not None
    ]
    return sum(amounts, _ZERO) if amounts else None


def rate_phases(
    *,
    phases: Sequence[Phase],
    currency: Currency,
    period_start: datetime,
    period_end: datetime,
    earlier: Iterable[InvoiceLine],
    entries: Iterable[UsageEntry],
    descriptions: Mapping[str, str] | None = None,
    closing: bool = False,
    end_date: datetime | None = None,
) -> tuple[InvoiceLine, ...]:
    """The usage lines of an invoice of the period `[period_start, period_end]` of a
    contract with `phases`, billing `entries` after the period's `earlier` invoices
    (their lines): `rating.rate_usage` once per phase, on the entries due in it, with
    its variant's components and free quotas prorated to its window, and the earlier
    lines that phase made. Each line carries its phase's `From` (`phase_from`); lines
    come phase by phase. With one phase covering the period, the lines are those of
    `rate_usage` (with `phase_from` set)."""
    cut = phase_windows(phases, period_start, period_end, end_date=end_date)
    windows = {window.phase.starts: window for window in cut}
    before = tuple(earlier)
    chosen: dict[datetime, list[UsageEntry]] = {}
    last_instant = period_end - _MICROSECOND
    for entry in entries:
        phase = phase_of(phases, min(entry.due_date, last_instant))
        chosen.setdefault(phase.starts, []).append(entry)
    lines: list[InvoiceLine] = []
    for phase in phases:
        window = windows.get(phase.starts)
        if window is None and phase.starts not in chosen:
            continue
        components = phase_components(window) if window else phase.plan_variant.metered_components
        rated = rate_usage(
            components=components,
            currency=currency,
            period_start=period_start,
            period_end=period_end,
            earlier=PeriodCharges.of_lines(x for x in before if x.phase_from == phase.starts),
            entries=chosen.get(phase.starts, ()),
            descriptions=descriptions,
            closing=closing and window is not None,
        )
        lines.extend(replace(line, phase_from=phase.starts) for line in rated)
    return tuple(lines)


def check_plan_change(
    current: PlanVariant, new: PlanVariant, change_date: datetime, last_billing_date: datetime
) -> None:
    """Raises `Invalid` (422) naming every reason a contract on `current` cannot move
    to `new` at `change_date`: another currency or billing period
    (`Cart.PlanVariantId`), or a `ChangeDate` before the contract's `LastBillingDate`
    (a billed period is never re-rated)."""
    errors: list[FieldError] = []
    if new.currency != current.currency:
        errors.append(
            FieldError(
                ORDER_PLAN_VARIANT_ID,
                "other_currency",
                f"The plan variant bills in {new.currency}, the contract in {current.currency}.",
            )
        )
    if new.billing_period != current.billing_period:
        errors.append(
            FieldError(
                ORDER_PLAN_VARIANT_ID,
                "other_billing_period",
                "The plan variant's BillingPeriod differs from the contract's.",
            )
        )
    if change_date < last_billing_date:
        errors.append(
            FieldError(
                CHANGE_DATE,
                "before_last_billing_date",
                f"ChangeDate must not be before LastBillingDate ({last_billing_date.isoformat()}).",
            )
        )
    if errors:
        raise Invalid(errors)


def _free_quota(exact: Decimal) -> Decimal:
    # Rounded down: a prorated free quota never grants more than its fraction.
    return exact.quantize(_QUANTITY_QUANTUM, rounding=ROUND_DOWN)


def _check_ascending(phases: Sequence[Phase]) -> None:
    if not phases:
        raise ValueError("a contract has at least one phase")
    for earlier, later in itertools.pairwise(phases):
        if later.starts <= earlier.starts:
            raise ValueError(f"phases must start in ascending order: {later.starts}")


def _day(instant: datetime) -> str:
    return instant.date().isoformat()

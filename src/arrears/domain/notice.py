"""Notice periods (SPEC §11): when a contract ended now may end. Pure: no I/O.

A plan variant may carry `"NoticePeriod": {"Unit", "Quantity"}`, read with
`periods.parse_billing_period`. `POST /api/v1/contracts/{id}/end` without an `EndDate`
ends the contract at `notice_end_date`: the end of the first billing period that ends
at least the notice period from now. With one month's notice, a monthly contract
ended on day 10 of a period ends at the end of the next period (ended on 2026-01-10,
its period 2026-01-01 - 2026-02-01: now + one month is 2026-02-10, so it ends on
2026-03-01). An `EndDate` sooner than now + the notice period is refused
(`check_end_date`) unless the request says `"IgnoreNoticePeriod": true`.
"""

from __future__ import annotations

from datetime import datetime

from arrears.domain.errors import Invalid
from arrears.domain.periods import BillingPeriod, period_boundary, period_index_at

__all__ = ["check_end_date", "earliest_end", "notice_end_date"]


def earliest_end(notice_period: BillingPeriod | None, now: datetime) -> datetime:
    """The soonest a contract ended at `now` may end: now plus the notice period
    (calendar steps like billing periods: Jan 31 + 1 month is Feb 28/29); now without
    one."""
    return now if notice_period is None else period_boundary(now, notice_period, 1)


def notice_end_date(
    start_date: datetime,
    billing_period: BillingPeriod,
    notice_period: BillingPeriod | None,
    now: datetime,
) -> datetime:
    """The `EndDate` of a contract (anchored at `start_date`) ended at `now` without
    one: the first boundary of its billing periods at or after `earliest_end`. Without
    a notice period that is the end of the current period, or now itself when now is
    a boundary."""
    earliest = earliest_end(notice_period, now)
    index = period_index_at(start_date, billing_period, earliest)
    boundary = period_boundary(start_date, billing_period, index)
    return (
        boundary if boundary == earliest else period_boundary(start_date, billing_period, index + 1)
    )


def check_end_date(
    end_date: datetime,
    notice_period: BillingPeriod | None,
    now: datetime,
    *,
    ignore_notice_period: bool = False,
) -> None:
    """Raises `Invalid` (422, on `EndDate`, code `within_notice_period`) when
    `end_date` comes before `earliest_end` and `ignore_notice_period` is not set."""
    earliest = earliest_end(notice_period, now)
    if end_date < earliest and not ignore_notice_period:
        raise Invalid.one(
            "EndDate",
            "within_notice_period",
            f"EndDate must not be before {earliest.isoformat()} (the notice period); "
            'send "IgnoreNoticePeriod": true to end sooner.',
        )

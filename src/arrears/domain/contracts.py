"""Contracts and their billing periods (SPEC §4)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from arrears.domain.clock import utc_text
from arrears.domain.errors import Conflict, Invalid
from arrears.domain.periods import BillingPeriod, period_boundary

__all__ = ["Contract", "ContractStatus"]


class ContractStatus(enum.StrEnum):
    ACTIVE = "Active"
    ENDED = "Ended"


@dataclass(frozen=True, slots=True)
class Contract:
    """A customer's subscription to a plan variant ("subscription" on the seller API).

    Billing periods are anchored at `start_date`: period n is
    `[boundary(n), boundary(n + 1))`, always computed from the anchor. `billed_periods`
    counts the periods that have had their regular invoice, so the current period is
    `[last_billing_date, next_billing_date)`.
    """

    id: str
    created_at: datetime
    customer_id: str
    plan_variant_id: str
    billing_period: BillingPeriod
    start_date: datetime
    end_date: datetime | None = None
    billed_periods: int = 0
    final_invoice_id: str | None = None
    sold_terms: bool = False
    """Whether an order sold it a plan change, quantities or discounts (SPEC §11):
    billing reads those only for such contracts."""
    """Set once the final invoice is issued: the contract then takes no more usage."""

    @property
    def last_billing_date(self) -> datetime:
        return period_boundary(self.start_date, self.billing_period, self.billed_periods)

    @property
    def next_billing_date(self) -> datetime:
        return period_boundary(self.start_date, self.billing_period, self.billed_periods + 1)

    @property
    def billed_next_on(self) -> datetime | None:
        """When the contract is next invoiced, as the API shows `NextBillingDate`: the end
        of its current period; its `end_date` when the contract ends first (the final
        invoice comes then, not at the period's end); None once the final invoice is
        issued. (`next_billing_date` stays the period's end: billing counts from it.)"""
        if self.closed:
            return None
        if self.end_date is not None and self.end_date < self.next_billing_date:
            return self.end_date
        return self.next_billing_date

    @property
    def closed(self) -> bool:
        return self.final_invoice_id is not None

    @property
    def in_final_period(self) -> bool:
        """True when the contract ends within (or at the end of) its current period."""
        return self.end_date is not None and self.end_date <= self.next_billing_date

    def advanced(self) -> Contract:
        """This contract after its current period got its regular invoice."""
        return replace(self, billed_periods=self.billed_periods + 1)

    def status(self, now: datetime) -> ContractStatus:
        """Ended once the clock has reached `end_date`; until then still Active."""
        if self.end_date is not None and now >= self.end_date:
            return ContractStatus.ENDED
        return ContractStatus.ACTIVE

    def ended(self, end_date: datetime) -> Contract:
        """This contract with `end_date` set.

        The end may not lie before the start, nor inside a period that already has its
        regular invoice (that invoice would no longer be true); a contract is ended once.
        """
        if self.end_date is not None:
            raise Conflict(f"Contract {self.id} already ends at {utc_text(self.end_date)}.")
        if end_date < self.start_date:
            raise Invalid.one("EndDate", "before_start", "EndDate must not be before StartDate.")
        if end_date < self.last_billing_date:
            raise Invalid.one(
                "EndDate",
                "before_last_billing_date",
                "EndDate must not be before LastBillingDate "
                f"({utc_text(self.last_billing_date)}): that period is already invoiced.",
            )
        return replace(self, end_date=end_date)

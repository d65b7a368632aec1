"""What rating needs of a batch's contracts beyond their windows (SPEC §7, §11): the
plan variant of each phase, currency, tax rate, component names, the quantities held
and the discounts given. Read once per batch: a query per plan variant, one for the
customers' tax rates, and one each for the batch's phases, quantities and discounts,
however many invoices the batch makes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from arrears.domain.catalog import PlanVariant
from arrears.domain.contracts import Contract
from arrears.domain.discounts import DiscountSubscription
from arrears.domain.invoices import effective_tax_rate
from arrears.domain.money import Currency, currency
from arrears.domain.phases import Phase
from arrears.domain.quantities import ComponentSubscription
from arrears.store.unit_of_work import UnitOfWork

__all__ = ["InvoiceTerms", "read_terms"]


@dataclass(frozen=True, slots=True)
class InvoiceTerms:
    """What rating needs of a contract beyond its window: read once per batch."""

    phases: tuple[Phase, ...]
    """The contract's plan phases, ascending; one for a contract that never changed
    plans (its variant from its `StartDate`)."""
    currency: Currency
    customer_tax_rate: Decimal | None
    """Percent; overrides the variants' rate when set."""
    descriptions: dict[str, str]
    """The name of each component its variants charge, for its lines."""
    quantities: tuple[ComponentSubscription, ...] = ()
    discounts: tuple[DiscountSubscription, ...] = ()
    rate: Decimal = field(init=False)
    """The tax rate of its first phase, computed once (most contracts have one phase)."""
    committed: bool = field(init=False)
    """Whether a variant of its phases has a minimum commitment."""

    def __post_init__(self) -> None:
        # Frozen: set once here, read for every invoice of the batch.
        object.__setattr__(self, "rate", self.tax_rate(self.phases[0]))
        committed = any(p.plan_variant.minimum_commitment is not None for p in self.phases)
        object.__setattr__(self, "committed", committed)

    @property
    def variant(self) -> PlanVariant:
        """The variant of the first phase (a contract's only one unless it changed)."""
        return self.phases[0].plan_variant

    def tax_rate(self, phase: Phase) -> Decimal:
        """The tax rate of an invoice whose period starts in `phase`."""
        return effective_tax_rate(self.customer_tax_rate, phase.plan_variant.tax_rate)

    @property
    def phased(self) -> bool:
        """Whether the contract changed plans: its lines then name their phase."""
        return len(self.phases) > 1


def read_terms(work: UnitOfWork, contracts: Sequence[Contract]) -> dict[str, InvoiceTerms]:
    """Each contract's terms by id."""
    catalog, plans = work.catalog, work.contract_plans
    unique = list({contract.id: contract for contract in contracts}.values())
    stored = plans.phases(unique)
    variants: dict[str, PlanVariant] = {}
    names: dict[str, dict[str, str]] = {}
    for kept in stored.values():
        for phase in kept:
            if phase.plan_variant_id not in variants:
                variant = catalog.plan_variant(phase.plan_variant_id)
                variants[variant.id] = variant
                names[variant.id] = catalog.component_names(
                    [m.component_id for m in variant.metered_components]
                    + [q.component_id for q in variant.quantity_components]
                )
    # Quantities and discounts exist only where an order sold them (`sold_terms`).
    ids = [contract.id for contract in unique if contract.sold_terms]
    held = plans.component_subscriptions(ids) if ids else {}
    given = work.discounts.contract_discounts(ids) if ids else {}
    tax_rates = catalog.customer_tax_rates(contract.customer_id for contract in unique)
    terms: dict[str, InvoiceTerms] = {}
    for contract in unique:
        phases = tuple(Phase(variants[p.plan_variant_id], p.starts) for p in stored[contract.id])
        first = phases[0].plan_variant
        descriptions: dict[str, str] = {}
        for one in phases:
            descriptions.update(names[one.plan_variant.id])
        terms[contract.id] = InvoiceTerms(
            phases=phases,
            currency=currency(first.currency),
            customer_tax_rate=tax_rates[contract.customer_id],
            descriptions=descriptions,
            quantities=tuple(held.get(contract.id, ())),
            discounts=tuple(given.get(contract.id, ())),
        )
    return terms

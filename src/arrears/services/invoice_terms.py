"""What rating needs of a batch's contracts beyond their windows (SPEC §7, §11): the
plan variant of each phase, currency, tax rate, component names, the quantities held
and the discounts given. Read once per batch: a query per plan variant, one for the
customers' tax rates, and one each for the batch's phases, quantities and discounts,
however many invoices the batch makes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from arrears.domain.catalog import PlanVariant
from arrears.domain.contracts import Contract
from arrears.domain.discounts import DiscountSubscription
from arrears.domain.invoices import effective_tax_rate
from arrears.domain.money import Currency, currency
from arrears.domain.phases import Phase
from arrears.domain.quantities import ComponentSubscription
from arrears.store.contract_plans import StoredPhase
from arrears.store.unit_of_work import UnitOfWork

__all__ = ["InvoiceTerms", "read_terms"]


@dataclass(frozen=True, slots=True)
class InvoiceTerms:
    """What rating needs of a contract beyond its window: read once per batch (build it
    with `read_terms`; the fields after `discounts` are derived once, here, rather than
    for each invoice)."""

    phases: tuple[Phase, ...]
    """The contract's plan phases, ascending; one for a contract that never changed
    plans (its variant from its `StartDate`)."""
    currency: Currency
    customer_tax_rate: Decimal | None
    """Percent; overrides the variants' rate when set."""
    descriptions: dict[str, str]
    """The name of each component its variants charge, for its lines."""
    quantities: tuple[ComponentSubscription, ...]
    discounts: tuple[DiscountSubscription, ...]
    phased: bool
    """Whether the contract changed plans: its lines then name their phase."""
    rate: Decimal
    """The tax rate of its first phase."""
    committed: bool
    """Whether a variant of its phases has a minimum commitment."""

    @property
    def variant(self) -> PlanVariant:
        """The variant of the first phase (a contract's only one unless it changed)."""
        return self.phases[0].plan_variant

    def tax_rate(self, phase: Phase) -> Decimal:
        """The tax rate of an invoice whose period starts in `phase`."""
        return effective_tax_rate(self.customer_tax_rate, phase.plan_variant.tax_rate)


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
    # Most contracts of a batch have one phase and nothing sold: their terms depend on
    # the variant, the start and the customer's tax rate only, and are made once.
    plain: dict[tuple[str, datetime, Decimal | None], InvoiceTerms] = {}
    found: dict[str, InvoiceTerms] = {}
    for contract in unique:
        kept, rate = stored[contract.id], tax_rates[contract.customer_id]
        if len(kept) == 1 and contract.id not in held and contract.id not in given:
            key = (kept[0].plan_variant_id, kept[0].starts, rate)
            if key not in plain:
                plain[key] = _terms(_phases(kept, variants), rate, names, (), ())
            found[contract.id] = plain[key]
            continue
        found[contract.id] = _terms(
            _phases(kept, variants),
            rate,
            names,
            tuple(held.get(contract.id, ())),
            tuple(given.get(contract.id, ())),
        )
    return found


def _phases(stored: Sequence[StoredPhase], variants: dict[str, PlanVariant]) -> tuple[Phase, ...]:
    return tuple(Phase(variants[p.plan_variant_id], p.starts) for p in stored)


def _terms(
    phases: tuple[Phase, ...],
    customer_tax_rate: Decimal | None,
    names: dict[str, dict[str, str]],
    quantities: tuple[ComponentSubscription, ...],
    discounts: tuple[DiscountSubscription, ...],
) -> InvoiceTerms:
    first = phases[0].plan_variant
    if len(phases) == 1:  # most contracts: the variant's names as they are, shared
        descriptions = names[first.id]
        committed = first.minimum_commitment is not None
    else:
        descriptions = {}
        for phase in phases:
            descriptions.update(names[phase.plan_variant.id])
        committed = any(p.plan_variant.minimum_commitment is not None for p in phases)
    return InvoiceTerms(
        phases=phases,
        currency=currency(first.currency),
        customer_tax_rate=customer_tax_rate,
        descriptions=descriptions,
        quantities=quantities,
        discounts=discounts,
        phased=len(phases) > 1,
        rate=effective_tax_rate(customer_tax_rate, first.tax_rate),
        committed=committed,
    )

"""The seller's price list in storage: customers, components, plans, plan variants."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from decimal import Decimal

from sqlalchemy import delete, exists, select

from arrears.domain.catalog import (
    Component,
    ComponentKind,
    Customer,
    MeteredComponent,
    Plan,
    PlanVariant,
    QuantityComponent,
)
from arrears.domain.paging import Page, PageRequest
from arrears.domain.periods import BillingPeriod, PeriodUnit
from arrears.domain.pricing import parse_pricing, pricing_to_json
from arrears.store.tables import (
    ComponentRow,
    ContractPhaseRow,
    ContractRow,
    CustomerRow,
    MeteredComponentRow,
    PlanRow,
    PlanVariantRow,
    QuantityComponentRow,
)
from arrears.store.tenancy import TenantRepository, batched

__all__ = ["CatalogRepository"]


class CatalogRepository(TenantRepository):
    # -- customers ---------------------------------------------------------------------

    def add_customer(self, customer: Customer) -> None:
        conflict = f"A customer with ExternalCustomerId {customer.external_customer_id!r} exists."
        with self._unique(conflict):
            self._session.add(CustomerRow(seller_id=self.seller_id, **_fields(customer)))

    def customer(self, customer_id: str) -> Customer:
        return _customer(self._row(CustomerRow, customer_id, "customer"))

    def update_customer(self, customer_id: str, changes: dict[str, object]) -> Customer:
        """Set the given fields of the customer (its row locked until commit) and return
        it as it is now. Issued invoices keep their own copy (`invoices.customer`)."""
        row = self._row(CustomerRow, customer_id, "customer", for_update=True)
        taken = (
            f"A customer with ExternalCustomerId {changes.get('external_customer_id')!r} exists."
        )
        with self._unique(taken):
            for name, value in changes.items():
                setattr(row, name, value)
            self._session.flush()
        return _customer(row)

    def customer_tax_rates(self, customer_ids: Iterable[str]) -> dict[str, Decimal | None]:
        """The tax rate of each of these customers (None: the plan's), a query per 2,000."""
        rates: dict[str, Decimal | None] = {}
        for chunk in batched(set(customer_ids), 2_000):
            query = select(CustomerRow.id, CustomerRow.tax_rate).where(
                CustomerRow.seller_id == self.seller_id, CustomerRow.id.in_(chunk)
            )
            rates.update((id_, rate) for id_, rate in self._session.execute(query))
        return rates

    def customers(self, page: PageRequest) -> Page[Customer]:
        return self._page(self._scoped(CustomerRow), CustomerRow, page, _customer)

    # -- components --------------------------------------------------------------------

    def add_component(self, component: Component) -> None:
        with self._unique(_item_code_taken(component)):
            self._session.add(ComponentRow(seller_id=self.seller_id, **_fields(component)))

    def component(self, component_id: str) -> Component:
        return _component(self._row(ComponentRow, component_id, "component"))

    def components(self, page: PageRequest) -> Page[Component]:
        return self._page(self._scoped(ComponentRow), ComponentRow, page, _component)

    def existing_component_ids(self, component_ids: Iterable[str]) -> set[str]:
        """Which of these ids are components of this seller (one query for all)."""
        wanted = set(component_ids)
        if not wanted:
            return set()
        query = self._scoped(ComponentRow).where(ComponentRow.id.in_(wanted))
        return {row.id for row in self._session.execute(query).scalars()}

    def component_names(self, component_ids: Iterable[str]) -> dict[str, str]:
        """The name of each of these components (one query)."""
        query = select(ComponentRow.id, ComponentRow.name).where(
            ComponentRow.seller_id == self.seller_id, ComponentRow.id.in_(set(component_ids))
        )
        return {row.id: row.name for row in self._session.execute(query)}

    def component_kinds(self, component_ids: Iterable[str]) -> dict[str, ComponentKind]:
        """The kind of each of these ids that is a component of this seller (one query)."""
        query = select(ComponentRow.id, ComponentRow.kind).where(
            ComponentRow.seller_id == self.seller_id, ComponentRow.id.in_(set(component_ids))
        )
        return {id_: ComponentKind(kind) for id_, kind in self._session.execute(query)}

    def item_codes(self, component_ids: Iterable[str]) -> dict[str, str]:
        """The ItemCode of each of these components that has one."""
        query = select(ComponentRow.id, ComponentRow.item_code).where(
            ComponentRow.seller_id == self.seller_id, ComponentRow.id.in_(set(component_ids))
        )
        return {id_: code for id_, code in self._session.execute(query) if code is not None}

    def replace_component(self, component: Component) -> None:
        row = self._row(ComponentRow, component.id, "component")
        with self._unique(_item_code_taken(component)):
            for name, value in _fields(component).items():
                setattr(row, name, value)

    def component_priced(self, component_id: str) -> bool:
        """True when a plan variant lists this component (metered or quantity)."""
        metered = select(MeteredComponentRow.plan_variant_id).where(
            MeteredComponentRow.component_id == component_id
        )
        priced = select(QuantityComponentRow.plan_variant_id).where(
            QuantityComponentRow.component_id == component_id
        )
        return bool(self._session.execute(select(exists(metered) | exists(priced))).scalar())

    def component_in_use(self, component_id: str) -> bool:
        """True when a plan variant a contract is (or was) on charges this component."""
        charging = select(MeteredComponentRow.plan_variant_id).where(
            MeteredComponentRow.component_id == component_id
        )
        pricing = select(QuantityComponentRow.plan_variant_id).where(
            QuantityComponentRow.component_id == component_id
        )
        variants = charging.union(pricing).subquery()
        used = select(ContractRow.id).where(
            ContractRow.seller_id == self.seller_id,
            ContractRow.plan_variant_id.in_(select(variants.c.plan_variant_id)),
        )
        phased = (
            select(ContractPhaseRow.contract_id)
            .join(ContractRow, ContractRow.id == ContractPhaseRow.contract_id)
            .where(
                ContractRow.seller_id == self.seller_id,
                ContractPhaseRow.plan_variant_id.in_(select(variants.c.plan_variant_id)),
            )
        )
        return bool(self._session.execute(select(exists(used) | exists(phased))).scalar())

    # -- plans -------------------------------------------------------------------------

    def add_plan(self, plan: Plan) -> None:
        self._session.add(PlanRow(seller_id=self.seller_id, **_fields(plan)))

    def plan(self, plan_id: str) -> Plan:
        return _plan(self._row(PlanRow, plan_id, "plan"))

    def plan_exists(self, plan_id: str) -> bool:
        query = self._scoped(PlanRow).where(PlanRow.id == plan_id)
        return self._session.execute(query).first() is not None

    def plans(self, page: PageRequest) -> Page[Plan]:
        return self._page(self._scoped(PlanRow), PlanRow, page, _plan)

    # -- plan variants -----------------------------------------------------------------

    def add_plan_variant(self, variant: PlanVariant) -> None:
        self._session.add(PlanVariantRow(seller_id=self.seller_id, **_variant_fields(variant)))
        self._session.flush()
        self._add_metered_components(variant)

    def plan_variant(self, variant_id: str) -> PlanVariant:
        row = self._row(PlanVariantRow, variant_id, "plan variant")
        return self._variants([row])[0]

    def plan_variants(self, page: PageRequest) -> Page[PlanVariant]:
        rows = self._page(self._scoped(PlanVariantRow), PlanVariantRow, page, lambda row: row)
        return Page(items=self._variants(rows.items), total=rows.total)

    def replace_plan_variant(self, variant: PlanVariant) -> None:
        row = self._row(PlanVariantRow, variant.id, "plan variant")
        for name, value in _variant_fields(variant).items():
            setattr(row, name, value)
        self._session.execute(
            delete(MeteredComponentRow).where(MeteredComponentRow.plan_variant_id == variant.id)
        )
        self._session.execute(
            delete(QuantityComponentRow).where(QuantityComponentRow.plan_variant_id == variant.id)
        )
        self._add_metered_components(variant)

    def plan_variant_in_use(self, variant_id: str) -> bool:
        """True when a contract is (or was, before a plan change) on this variant."""
        used = select(ContractRow.id).where(
            ContractRow.seller_id == self.seller_id, ContractRow.plan_variant_id == variant_id
        )
        phased = (
            select(ContractPhaseRow.contract_id)
            .join(ContractRow, ContractRow.id == ContractPhaseRow.contract_id)
            .where(
                ContractRow.seller_id == self.seller_id,
                ContractPhaseRow.plan_variant_id == variant_id,
            )
        )
        return bool(self._session.execute(select(exists(used) | exists(phased))).scalar())

    def plan_variants_by_id(self, variant_ids: Iterable[str]) -> dict[str, PlanVariant]:
        """These plan variants of this seller by id, in two queries for all (unknown
        ids are left out)."""
        wanted = set(variant_ids)
        if not wanted:
            return {}
        rows = list(
            self._session.execute(
                self._scoped(PlanVariantRow).where(PlanVariantRow.id.in_(wanted))
            ).scalars()
        )
        return {variant.id: variant for variant in self._variants(rows)}

    def _add_metered_components(self, variant: PlanVariant) -> None:
        self._session.add_all(
            MeteredComponentRow(
                plan_variant_id=variant.id,
                component_id=metered.component_id,
                position=position,
                pricing=pricing_to_json(metered.pricing),
                free_quota=metered.free_quota,
                maximum_amount=metered.maximum_amount,
            )
            for position, metered in enumerate(variant.metered_components)
        )
        self._session.add_all(
            QuantityComponentRow(
                plan_variant_id=variant.id,
                component_id=priced.component_id,
                position=position,
                price_per_unit=priced.price_per_unit,
            )
            for position, priced in enumerate(variant.quantity_components)
        )
        self._session.flush()

    def _variants(self, rows: list[PlanVariantRow]) -> list[PlanVariant]:
        """Plan variants with their metered and quantity components, in two queries for
        all rows."""
        ids = [row.id for row in rows]
        metered: dict[str, list[MeteredComponent]] = {id_: [] for id_ in ids}
        priced: dict[str, list[QuantityComponent]] = {id_: [] for id_ in ids}
        if ids:
            by_position = (
                select(QuantityComponentRow)
                .where(QuantityComponentRow.plan_variant_id.in_(ids))
                .order_by(QuantityComponentRow.plan_variant_id, QuantityComponentRow.position)
            )
            for q in self._session.execute(by_position).scalars():
                priced[q.plan_variant_id].append(
                    QuantityComponent(q.component_id, q.price_per_unit)
                )
            query = (
                select(MeteredComponentRow)
                .where(MeteredComponentRow.plan_variant_id.in_(ids))
                .order_by(MeteredComponentRow.plan_variant_id, MeteredComponentRow.position)
            )
            for m in self._session.execute(query).scalars():
                metered[m.plan_variant_id].append(
                    MeteredComponent(
                        component_id=m.component_id,
                        pricing=parse_pricing(m.pricing),
                        free_quota=m.free_quota,
                        maximum_amount=m.maximum_amount,
                    )
                )
        return [_variant(row, tuple(metered[row.id]), tuple(priced[row.id])) for row in rows]


def _fields(obj: Customer | Component | Plan) -> dict[str, object]:
    return {field.name: getattr(obj, field.name) for field in fields(obj)}


def _item_code_taken(component: Component) -> str:
    return f"A component with ItemCode {component.item_code!r} exists."


def _variant_fields(variant: PlanVariant) -> dict[str, object]:
    return {
        "id": variant.id,
        "created_at": variant.created_at,
        "plan_id": variant.plan_id,
        "name": variant.name,
        "currency": variant.currency,
        "period_unit": variant.billing_period.unit.value,
        "period_quantity": variant.billing_period.quantity,
        "recurring_fee": variant.recurring_fee,
        "tax_rate": variant.tax_rate,
        "minimum_commitment": variant.minimum_commitment,
        "notice_unit": notice.unit.value if (notice := variant.notice_period) else None,
        "notice_quantity": notice.quantity if notice else None,
    }


def _customer(row: CustomerRow) -> Customer:
    return Customer(
        id=row.id,
        created_at=row.created_at,
        company_name=row.company_name,
        first_name=row.first_name,
        last_name=row.last_name,
        email_address=row.email_address,
        external_customer_id=row.external_customer_id,
        locale=row.locale,
        tax_rate=row.tax_rate,
        address=row.address,
        vat_id=row.vat_id,
        payment_terms_days=row.payment_terms_days,
    )


def _component(row: ComponentRow) -> Component:
    return Component(
        id=row.id,
        created_at=row.created_at,
        name=row.name,
        unit=row.unit,
        item_code=row.item_code,
        description=row.description,
        kind=ComponentKind(row.kind),
    )


def _plan(row: PlanRow) -> Plan:
    return Plan(id=row.id, created_at=row.created_at, name=row.name, description=row.description)


def _variant(
    row: PlanVariantRow,
    metered: tuple[MeteredComponent, ...],
    priced: tuple[QuantityComponent, ...],
) -> PlanVariant:
    notice = (
        BillingPeriod(PeriodUnit(row.notice_unit), row.notice_quantity)
        if row.notice_unit is not None and row.notice_quantity is not None
        else None
    )
    return PlanVariant(
        id=row.id,
        created_at=row.created_at,
        plan_id=row.plan_id,
        name=row.name,
        currency=row.currency,
        billing_period=BillingPeriod(PeriodUnit(row.period_unit), row.period_quantity),
        tax_rate=row.tax_rate,
        metered_components=metered,
        recurring_fee=row.recurring_fee,
        minimum_commitment=row.minimum_commitment,
        quantity_components=priced,
        notice_period=notice,
    )

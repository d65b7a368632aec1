"""The unit of work: one transaction and the repositories that run in it.

Whoever opens a unit commits it: a request handler, a task, a billing batch opens one
with `Database.unit_of_work(seller_id)` (or `Database.registry_work()` for what spans
sellers) and the `with` block commits when it ends without error, or rolls back. A
service receives the unit, uses its repositories and never commits, so a use case is
all or nothing and two use cases called in one block share one transaction.

This module is also the one door from the layers above the store to it: `api/` and
`console/` import nothing else from `store/` (docs/architecture.md).
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from sqlalchemy.orm import Session

from arrears.store.billing_failures import BillingFailureLog, BillingFailures
from arrears.store.billing_queue import BillingQueue, DueContracts
from arrears.store.catalog import CatalogRepository
from arrears.store.console_reads import ConsoleReads
from arrears.store.contract_plans import ContractPlanRepository
from arrears.store.contracts import ContractRepository
from arrears.store.credit_notes import CreditNoteRepository
from arrears.store.database import Database
from arrears.store.discounts import DiscountRepository
from arrears.store.invoice_balances import InvoiceBalances
from arrears.store.invoices import InvoiceRepository
from arrears.store.orders import OrderRepository
from arrears.store.outages import Outage, outage_of
from arrears.store.payments import PaymentRepository
from arrears.store.reopening import InvoiceReopening
from arrears.store.seller_profiles import SellerProfileRepository
from arrears.store.sellers import SellerRegistry
from arrears.store.tasks import TaskQueue, TaskRepository
from arrears.store.usage import UsageRepository
from arrears.store.webhook_queue import DeliveryQueue
from arrears.store.webhooks import WebhookDeliveries, WebhookEndpoints

__all__ = ["Access", "Database", "Outage", "RegistryWork", "UnitOfWork", "outage_of"]

Access = Literal["write", "read", "rehearsal"]
"""How a unit's transaction ends: `write` commits it, `read` (read-only: no write lock
on SQLite) and `rehearsal` (writes that show what would happen: previews) roll back."""


class RegistryWork:
    """A transaction over what spans sellers: the tenant registry and the queues that
    workers and operators read across sellers. Repositories are built on first use."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @cached_property
    def sellers(self) -> SellerRegistry:
        return SellerRegistry(self.session)

    @cached_property
    def billing_failure_log(self) -> BillingFailureLog:
        return BillingFailureLog(self.session)

    @cached_property
    def billing_queue(self) -> BillingQueue:
        return BillingQueue(self.session)

    @cached_property
    def task_queue(self) -> TaskQueue:
        return TaskQueue(self.session)

    @cached_property
    def webhook_queue(self) -> DeliveryQueue:
        return DeliveryQueue(self.session)


class UnitOfWork(RegistryWork):
    """One seller's repositories over one transaction; each filters by the seller
    (`store/tenancy.py`) and is built on first use, so a unit costs nothing for the
    repositories a use case does not touch."""

    def __init__(self, session: Session, seller_id: str) -> None:
        super().__init__(session)
        self.seller_id = seller_id

    @cached_property
    def catalog(self) -> CatalogRepository:
        return CatalogRepository(self.session, self.seller_id)

    @cached_property
    def contracts(self) -> ContractRepository:
        return ContractRepository(self.session, self.seller_id)

    @cached_property
    def contract_plans(self) -> ContractPlanRepository:
        return ContractPlanRepository(self.session, self.seller_id)

    @cached_property
    def discounts(self) -> DiscountRepository:
        return DiscountRepository(self.session, self.seller_id)

    @cached_property
    def usage(self) -> UsageRepository:
        return UsageRepository(self.session, self.seller_id)

    @cached_property
    def tasks(self) -> TaskRepository:
        return TaskRepository(self.session, self.seller_id)

    @cached_property
    def invoices(self) -> InvoiceRepository:
        return InvoiceRepository(self.session, self.seller_id)

    @cached_property
    def credit_notes(self) -> CreditNoteRepository:
        return CreditNoteRepository(self.session, self.seller_id)

    @cached_property
    def payments(self) -> PaymentRepository:
        return PaymentRepository(self.session, self.seller_id)

    @cached_property
    def invoice_balances(self) -> InvoiceBalances:
        return InvoiceBalances(self.session, self.seller_id)

    @cached_property
    def reopening(self) -> InvoiceReopening:
        return InvoiceReopening(self.session, self.seller_id)

    @cached_property
    def seller_profiles(self) -> SellerProfileRepository:
        return SellerProfileRepository(self.session, self.seller_id)

    @cached_property
    def orders(self) -> OrderRepository:
        return OrderRepository(self.session, self.seller_id)

    @cached_property
    def billing_failures(self) -> BillingFailures:
        return BillingFailures(self.session, self.seller_id)

    @cached_property
    def due_contracts(self) -> DueContracts:
        return DueContracts(self.session, self.seller_id)

    @cached_property
    def console_reads(self) -> ConsoleReads:
        return ConsoleReads(self.session, self.seller_id)

    @cached_property
    def webhook_endpoints(self) -> WebhookEndpoints:
        return WebhookEndpoints(self.session, self.seller_id)

    @cached_property
    def webhook_deliveries(self) -> WebhookDeliveries:
        return WebhookDeliveries(self.session, self.seller_id)

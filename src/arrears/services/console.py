"""Read use cases of the console (SPEC §14): what each page shows, for one seller.

Every read goes through repositories built for the seller, so a foreign id is
`NotFound` exactly as in the API. Nothing here writes; the contract page's preview runs
in a rehearsal unit of work that the caller rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from arrears.domain.catalog import Customer, PlanVariant
from arrears.domain.clock import Clock
from arrears.domain.contracts import Contract
from arrears.domain.credit_notes import CreditNote
from arrears.domain.errors import Conflict
from arrears.domain.invoices import Invoice, InvoiceDraft, LineKind
from arrears.domain.paging import Page, PageRequest
from arrears.domain.payments import Balance, Payment
from arrears.domain.profiles import DEFAULT_PAYMENT_TERMS_DAYS, due_date
from arrears.domain.tasks import Task, TaskStatus
from arrears.domain.usage import UsageEntry
from arrears.services.contract_billing import catch_up, preview_period
from arrears.store.console_reads import (
    CUSTOMER_SORTS,
    INVOICE_SORTS,
    TASK_SORTS,
    CustomerSummary,
    InvoiceQuery,
    InvoiceSummary,
    Sort,
    TaskSummary,
    UsageSum,
)
from arrears.store.credit_notes import CreditNoteFilter
from arrears.store.unit_of_work import UnitOfWork

__all__ = [
    "CUSTOMER_SORTS",
    "INVOICE_SORTS",
    "TASK_SORTS",
    "USAGE_WINDOW",
    "ContractView",
    "CreditNoteFilter",
    "CreditNoteView",
    "CustomerView",
    "FreeQuota",
    "InvoiceQuery",
    "InvoiceView",
    "Overview",
    "PhaseView",
    "Sort",
    "UsageSum",
    "contract_view",
    "credit_note_view",
    "customer_view",
    "find_credit_notes",
    "find_customers",
    "find_invoices",
    "find_tasks",
    "invoice_view",
    "overview",
    "task_view",
]

USAGE_WINDOW = timedelta(days=90)
"""How far back the overview and the contract page chart usage."""
REVENUE_MONTHS = 12
FAILING_TASKS_SHOWN = 10
_NEWEST = Sort("date", descending=True)


@dataclass(frozen=True, slots=True)
class Overview:
    months: list[str]
    """The twelve months (`YYYY-MM`) of the revenue chart, oldest first."""
    revenue: list[tuple[str, str, Decimal]]
    """(month, currency, billed total), oldest first; months without invoices absent."""
    usage: list[UsageSum]
    usage_from: datetime
    usage_to: datetime
    failing_tasks: Page[TaskSummary]


def overview(work: UnitOfWork, clock: Clock) -> Overview:
    """Billed revenue per month over the last twelve months, usage per day and component
    over the last 90 days, and the newest failed bulk submissions.

    The usage chart counts whole UTC days, from the day 90 days ago to today (as far as
    it is recorded): it reads the daily rollup, which knows days, not instants."""
    reads = work.console_reads
    now = clock.now()
    first_month = _month_start(now, back=REVENUE_MONTHS - 1)
    first_day = (now - USAGE_WINDOW).date()
    return Overview(
        months=[
            _month_start(now, back=back).strftime("%Y-%m")
            for back in range(REVENUE_MONTHS - 1, -1, -1)
        ],
        revenue=reads.revenue_by_month(first_month),
        usage=reads.daily_usage(first_day, now.date() + timedelta(days=1)),
        usage_from=datetime.combine(first_day, time(), UTC),
        usage_to=now,
        failing_tasks=reads.tasks(
            TaskStatus.FAILED.value,
            Sort("created", descending=True),
            PageRequest(0, FAILING_TASKS_SHOWN),
        ),
    )


def _month_start(now: datetime, *, back: int) -> datetime:
    months = now.year * 12 + now.month - 1 - back
    return now.replace(
        year=months // 12, month=months % 12 + 1, day=1, hour=0, minute=0, second=0, microsecond=0
    )


def find_customers(
    work: UnitOfWork, search: str, sort: Sort, page: PageRequest
) -> Page[CustomerSummary]:
    return work.console_reads.customers(search.strip(), sort, page)


@dataclass(frozen=True, slots=True)
class CustomerView:
    customer: Customer
    name: str
    contracts: Page[Contract]
    invoices: Page[InvoiceSummary]


def customer_view(
    work: UnitOfWork,
    customer_id: str,
    contracts: PageRequest,
    invoices: PageRequest,
) -> CustomerView:
    """A customer with a page of its contracts and a page of its invoices, newest first."""
    customer = work.catalog.customer(customer_id)
    reads = work.console_reads
    return CustomerView(
        customer=customer,
        name=reads.customer_names([customer_id])[customer_id],
        contracts=work.contracts.page(contracts, customer_id=customer_id),
        invoices=reads.invoices(InvoiceQuery(customer_id=customer_id), _NEWEST, invoices),
    )


@dataclass(frozen=True, slots=True)
class FreeQuota:
    component_id: str
    component_name: str
    quota: Decimal
    used: Decimal

    @property
    def left(self) -> Decimal:
        return max(self.quota - self.used, Decimal(0))


@dataclass(frozen=True, slots=True)
class PhaseView:
    """The contract is on a plan variant (`name`) from `starts` until `ends` (None: on)."""

    plan_variant_id: str
    name: str
    starts: datetime
    ends: datetime | None


@dataclass(frozen=True, slots=True)
class ContractView:
    contract: Contract
    customer_name: str
    variant: PlanVariant
    usage: list[UsageSum]
    usage_from: datetime
    usage_to: datetime
    preview: InvoiceDraft | None
    """None once the final invoice is issued: nothing more is billed."""
    free_quotas: list[FreeQuota]
    invoices: Page[InvoiceSummary]
    phases: list[PhaseView]
    """Its plan variants over time, oldest first (one for a contract never changed)."""


def contract_view(
    work: UnitOfWork, clock: Clock, contract_id: str, invoices: PageRequest
) -> ContractView:
    """The contract, its usage per day and component over the last 90 days, the current
    period's preview with each component's free quota left, and its invoices.

    `work` must be a rehearsal: the preview bills due periods first and rolls back."""
    contract = work.contracts.get(contract_id)
    catalog = work.catalog
    variant = catalog.plan_variant(contract.plan_variant_id)
    reads = work.console_reads
    now = clock.now()
    usage = reads.usage_by_day(now - USAGE_WINDOW, now, contract_id=contract_id)
    listed = reads.invoices(InvoiceQuery(contract_id=contract_id), _NEWEST, invoices)
    preview = _preview(work, clock, contract_id)
    names = catalog.component_names(m.component_id for m in variant.metered_components)
    return ContractView(
        contract=contract,
        customer_name=reads.customer_names([contract.customer_id])[contract.customer_id],
        variant=variant,
        usage=usage,
        usage_from=now - USAGE_WINDOW,
        usage_to=now,
        preview=preview,
        free_quotas=_free_quotas(variant, preview, names),
        invoices=listed,
        phases=_phases(work, contract),
    )


def _phases(work: UnitOfWork, contract: Contract) -> list[PhaseView]:
    stored = work.contract_plans.phases([contract])[contract.id]
    catalog = work.catalog
    names = {p.plan_variant_id: catalog.plan_variant(p.plan_variant_id).name for p in stored}
    ends = [p.starts for p in stored[1:]] + [None]
    return [
        PhaseView(p.plan_variant_id, names[p.plan_variant_id], p.starts, end)
        for p, end in zip(stored, ends, strict=True)
    ]


def _preview(work: UnitOfWork, clock: Clock, contract_id: str) -> InvoiceDraft | None:
    catch_up(work, clock, contract_id)  # as the API's preview does, in rehearsal
    try:
        return preview_period(work, clock, contract_id)
    except Conflict:
        return None


def _free_quotas(
    variant: PlanVariant, preview: InvoiceDraft | None, names: dict[str, str]
) -> list[FreeQuota]:
    used: dict[str, Decimal] = {}
    for line in preview.lines if preview is not None else ():
        if line.kind is LineKind.USAGE and line.component_id is not None:
            used[line.component_id] = used.get(line.component_id, Decimal(0)) + line.free_quantity
    return [
        FreeQuota(
            component_id=m.component_id,
            component_name=names.get(m.component_id, m.component_id),
            quota=m.free_quota,
            used=used.get(m.component_id, Decimal(0)),
        )
        for m in variant.metered_components
        if m.free_quota > 0
    ]


def find_invoices(
    work: UnitOfWork, query: InvoiceQuery, sort: Sort, page: PageRequest
) -> Page[InvoiceSummary]:
    return work.console_reads.invoices(query, sort, page)


@dataclass(frozen=True, slots=True)
class InvoiceView:
    invoice: Invoice
    customer_name: str
    component_names: dict[str, str]
    usage: list[list[UsageEntry]]
    """The usage entries each line billed, in the order of the lines."""
    balance: Balance
    due_date: datetime
    credit_notes: list[CreditNote]
    payments: list[Payment]


def invoice_view(work: UnitOfWork, invoice_id: str) -> InvoiceView:
    """The invoice, its lines, the usage entries each line billed, where it stands
    (SPEC §10), its credit notes and its payments."""
    billing = work.invoices
    invoice = billing.invoice(invoice_id)
    entries = {entry.id: entry for entry in billing.invoice_usage(invoice_id)}
    by_line = [
        [entries[usage_id] for usage_id in line.usage_ids if usage_id in entries]
        for line in invoice.draft.lines
    ]
    component_ids = {line.component_id for line in invoice.draft.lines if line.component_id}
    names = work.catalog.component_names(component_ids)
    customer = work.console_reads.customer_names([invoice.customer_id])
    return InvoiceView(
        invoice=invoice,
        customer_name=customer.get(invoice.customer_id, invoice.customer_id),
        component_names=names,
        usage=by_line,
        balance=work.invoice_balances.balances([invoice_id])[invoice_id],
        # Invoices issued before due dates were kept (migration 0014): 14 days, as the API.
        due_date=invoice.due_date or due_date(invoice.document_date, DEFAULT_PAYMENT_TERMS_DAYS),
        credit_notes=work.credit_notes.of_invoice(invoice_id),
        payments=work.payments.of_invoice(invoice_id, invoice.draft.currency.code),
    )


def find_tasks(
    work: UnitOfWork, status: TaskStatus | None, sort: Sort, page: PageRequest
) -> Page[TaskSummary]:
    return work.console_reads.tasks(status.value if status is not None else None, sort, page)


def task_view(work: UnitOfWork, task_id: str) -> Task:
    """The bulk submission with every record error."""
    return work.tasks.get(task_id)


@dataclass(frozen=True, slots=True)
class CreditNotesPage:
    page: Page[CreditNote]
    customer_names: dict[str, str]


def find_credit_notes(
    work: UnitOfWork, note_filter: CreditNoteFilter, page: PageRequest
) -> CreditNotesPage:
    """The seller's credit notes, newest first, with their customers' names."""
    found = work.credit_notes.credit_notes(note_filter, page)
    customers = sorted({note.customer_id for note in found.items})
    return CreditNotesPage(found, work.console_reads.customer_names(customers))


@dataclass(frozen=True, slots=True)
class CreditNoteView:
    note: CreditNote
    customer_name: str
    invoice_number: str


def credit_note_view(work: UnitOfWork, credit_note_id: str) -> CreditNoteView:
    """The credit note, its customer's name and the number of the invoice it corrects."""
    note = work.credit_notes.credit_note(credit_note_id)
    names = work.console_reads.customer_names([note.customer_id])
    invoice = work.invoices.invoice(note.invoice_id)
    return CreditNoteView(
        note, names.get(note.customer_id, note.customer_id), invoice.invoice_number
    )

"""Reads of issued invoices (SPEC §8): a page of them, one, the usage it bills."""

from __future__ import annotations

from arrears.domain.invoices import Invoice
from arrears.domain.paging import Page, PageRequest
from arrears.domain.payments import Balance
from arrears.domain.usage import UsageEntry
from arrears.store.invoices import InvoiceFilter
from arrears.store.unit_of_work import UnitOfWork

__all__ = ["InvoiceFilter", "invoice", "invoice_usage", "invoices", "standings"]


def invoices(work: UnitOfWork, invoice_filter: InvoiceFilter, page: PageRequest) -> Page[Invoice]:
    """The seller's invoices, newest first, by contract, customer and document date."""
    return work.invoices.invoices(invoice_filter, page)


def invoice(work: UnitOfWork, invoice_id: str) -> Invoice:
    """The invoice; `NotFound` for a foreign id."""
    return work.invoices.invoice(invoice_id)


def invoice_usage(work: UnitOfWork, invoice_id: str) -> list[UsageEntry]:
    """Every usage entry the invoice bills."""
    return work.invoices.invoice_usage(invoice_id)


def standings(work: UnitOfWork, invoice_ids: list[str]) -> dict[str, Balance]:
    """Where each of the invoices stands (SPEC §10): credited, paid, due, its status."""
    return work.invoice_balances.balances(invoice_ids)

"""Voiding an invoice (SPEC §10): which invoices can be voided, and where the contract
stands afterwards.

A void reopens what the invoice billed, as if it had never been billed. That holds
without bookkeeping of its own when invoices are voided from the newest period back:
- a regular invoice of period p, while it is the contract's last regular invoice (no
  later period has one, no final invoice exists): the contract's billing dates move back
  to period p, and the next run bills it again, with its free quota and tier positions,
  its entries not late;
- the final invoice: the contract is open again, and its final invoice is issued again;
- an interim invoice, while its period has no regular or final invoice: its entries go
  to the period's next invoice, which rates the period's total less what the period's
  other invoices (not voided) charged.
Anything else would turn reopened entries into late usage of a later period, so it is
refused (`Conflict`), saying which invoice to void first.
"""

from __future__ import annotations

from dataclasses import replace

from arrears.domain.contracts import Contract
from arrears.domain.errors import Conflict
from arrears.domain.invoices import InvoiceKind
from arrears.domain.payments import Balance, PaymentStatus

__all__ = ["check_voidable", "reopened"]


def check_voidable(
    invoice_number: str, kind: InvoiceKind, period_index: int, balance: Balance, contract: Contract
) -> None:
    """`Conflict` unless the invoice can be voided now (see the module's rules): not
    voided already, nothing paid on it (credit a paid invoice instead), and the newest
    of its contract's invoices that close a period."""
    if balance.payment_status is PaymentStatus.VOIDED:
        raise Conflict(f"Invoice {invoice_number} is voided already.")
    if balance.amount_paid > 0:
        raise Conflict(
            f"Invoice {invoice_number} has payments ({balance.amount_paid}): a paid invoice "
            "is not voided; credit it instead."
        )
    later = _later_closing_invoice(kind, period_index, contract)
    if later is not None:
        raise Conflict(
            f"Invoice {invoice_number} is followed by {later}: void that first, so that "
            "this invoice's usage is billed in its own period again, not as late usage."
        )


def _later_closing_invoice(kind: InvoiceKind, period_index: int, contract: Contract) -> str | None:
    if kind is InvoiceKind.FINAL:
        return None
    if contract.closed:
        return "the contract's final invoice"
    if kind is InvoiceKind.REGULAR and period_index < contract.billed_periods - 1:
        return f"the regular invoice of period {contract.billed_periods - 1}"
    if kind is InvoiceKind.INTERIM and period_index < contract.billed_periods:
        return f"the regular invoice of period {period_index}"
    return None


def reopened(kind: InvoiceKind, period_index: int, contract: Contract) -> Contract:
    """The contract once the invoice is voided: a regular invoice's period is its
    current period again; a final invoice's contract is open again; an interim invoice
    moves nothing."""
    if kind is InvoiceKind.REGULAR:
        return replace(contract, billed_periods=period_index)
    if kind is InvoiceKind.FINAL:
        return replace(contract, final_invoice_id=None)
    return contract

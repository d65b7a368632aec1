"""A contract that cannot be billed: why, in words meant for its seller.

Billing a contract can fail for a reason of the contract's own: an amount too large to
compute or store, a billing date outside the calendar, or a defect of the service that
only this contract's data reaches. Such a failure is recorded against the contract and
shown to its seller until an attempt bills it (docs/billing.md). The messages say what
is wrong and what happens next; they never carry an exception's text, a traceback or
SQL, which may name internals or other tenants' data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

__all__ = ["BillingFailure", "FailureCode", "FailureReason"]


class FailureCode(Enum):
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
    DATE_OUT_OF_RANGE = "date_out_of_range"
    REJECTED = "rejected"
    UNEXPECTED = "unexpected"


_RETRIED = " Billing is retried on every run; nothing of the contract was billed by halves."

MESSAGES = {
    FailureCode.AMOUNT_OUT_OF_RANGE: (
        "An amount of this contract's invoice (a quantity times its price, or a sum of "
        "the period's usage) is too large to compute or store, so the invoice cannot be "
        "issued. Correct the usage or the prices." + _RETRIED
    ),
    FailureCode.DATE_OUT_OF_RANGE: (
        "A billing date of this contract falls outside the calendar the service supports "
        "(years 1 to 9999), so the invoice cannot be issued." + _RETRIED
    ),
    FailureCode.UNEXPECTED: (
        "The service failed to bill this contract; the operator has been alerted with the "
        "details." + _RETRIED
    ),
}


@dataclass(frozen=True, slots=True)
class FailureReason:
    """Why one attempt failed: `message` for the seller, `error` (the exception's type)
    for the operator."""

    code: FailureCode
    message: str
    error: str

    @classmethod
    def of(cls, code: FailureCode, error: str) -> FailureReason:
        return cls(code, MESSAGES[code], error)


@dataclass(frozen=True, slots=True)
class BillingFailure:
    """A contract whose last billing attempt failed, as recorded."""

    seller_id: str
    contract_id: str
    reason: FailureReason
    first_failed_at: datetime
    """When the contract first failed since it was last billed (business clock)."""
    failed_at: datetime
    """When its last attempt failed (business clock)."""
    attempts: int
    """Failed attempts since it was last billed."""

"""What a void reopens (SPEC §10): the invoice's usage entries and rated items become
unbilled again, in the transaction that voids it."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from arrears.store.tables import BilledUsageRow, InvoiceLineRow, InvoiceRow, RatedItemRow
from arrears.store.tenancy import TenantRepository
from arrears.store.usage import batched

__all__ = ["InvoiceReopening"]

_CHUNK = 2_000


class InvoiceReopening(TenantRepository):
    def unbill(self, invoice_id: str) -> tuple[int, int]:
        """Unlink the invoice's usage entries and rated items; how many of each. The
        entries are found through the lines' usage ids (`billed_usage` is keyed by the
        entry, with no index on the invoice); the invoice must be this seller's."""
        self._row(InvoiceRow, invoice_id, "invoice")
        ids = [
            usage_id
            for usage_ids in self._session.execute(
                select(InvoiceLineRow.usage_ids).where(InvoiceLineRow.invoice_id == invoice_id)
            ).scalars()
            for usage_id in usage_ids
        ]
        entries = 0
        for chunk in batched(ids, _CHUNK):
            result = self._session.execute(
                delete(BilledUsageRow).where(
                    BilledUsageRow.usage_id.in_(chunk), BilledUsageRow.invoice_id == invoice_id
                )
            )
            entries += result.rowcount  # type: ignore[attr-defined]
        items = self._session.execute(
            update(RatedItemRow)
            .where(RatedItemRow.seller_id == self.seller_id, RatedItemRow.invoice_id == invoice_id)
            .values(invoice_id=None)
        )
        return entries, items.rowcount  # type: ignore[attr-defined]

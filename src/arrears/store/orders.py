"""Orders in storage: the order itself, its invoice, and the one-off charges (rated
items) it adds to the contract's next invoice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from arrears.domain.ids import new_id
from arrears.store.tables import OrderRow, RatedItemRow
from arrears.store.tenancy import TenantRepository

__all__ = ["OrderRepository"]


class OrderRepository(TenantRepository):
    def add_order(self, order_id: str, contract_id: str, created_at: datetime) -> None:
        self._session.add(
            OrderRow(
                id=order_id,
                seller_id=self.seller_id,
                contract_id=contract_id,
                created_at=created_at,
            )
        )
        self._session.flush()

    def set_order_invoice(self, order_id: str, invoice_id: str) -> None:
        self._row(OrderRow, order_id, "order").invoice_id = invoice_id
        self._session.flush()

    def add_rated_items(
        self,
        order_id: str,
        contract_id: str,
        items: Sequence[tuple[str, Decimal, Decimal]],
        created_at: datetime,
    ) -> None:
        """Store one-off charges (description, quantity, price per unit), to be billed on
        the contract's next invoice."""
        self._session.add_all(
            RatedItemRow(
                id=new_id(),
                seller_id=self.seller_id,
                created_at=created_at,
                contract_id=contract_id,
                order_id=order_id,
                description=description,
                quantity=quantity,
                price_per_unit=price_per_unit,
            )
            for description, quantity, price_per_unit in items
        )
        self._session.flush()

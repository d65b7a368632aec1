"""The names fields have on the wire (SPEC §5-§7), by the domain's names for them.

The domain checks a usage by its own names (`component`, `due_date`, ...); each API
answers with the names its request spelled. They are written here once, so that an
error names a field the same way on every path that can report it.
"""

from __future__ import annotations

from collections.abc import Mapping

from arrears.domain.errors import FieldError

__all__ = [
    "CHANGE_DATE",
    "CONTRACT_ID",
    "ORDER_COMPONENT_SUBSCRIPTIONS",
    "ORDER_DISCOUNT_SUBSCRIPTIONS",
    "ORDER_PLAN_VARIANT_ID",
    "ORDER_USAGES",
    "RECORDS",
    "RECORD_FIELDS",
    "SUBSCRIPTION_ID",
    "USAGE_FIELDS",
    "item_path",
    "usage_error",
]

USAGE_FIELDS: Mapping[str, str] = {
    "component": "ComponentId",
    "quantity": "Quantity",
    "due_date": "DueDate",
    "key": "Key",
    "memo": "Memo",
    "price": "ProductOverride.PricePerUnit",
}
"""A usage on the contract usage API and in an order's cart (SPEC §5, §7)."""

RECORD_FIELDS: Mapping[str, str] = {
    "contract": "subscriptionId",
    "quantity": "quantity",
    "due_date": "dueDate",
    "key": "key",
    "memo": "description",
    "price": "price",
}
"""A consumption record of the seller consumption API (SPEC §6)."""

SUBSCRIPTION_ID = RECORD_FIELDS["contract"]
"""The record's (or the older endpoints' body's) subscription."""
RECORDS = "consumptions"
"""The records of a consumption submission."""
CONTRACT_ID = "ContractId"
"""The contract an order is placed on."""
ORDER_USAGES = "Cart.MeteredUsages"
"""The metered usages of an order."""
ORDER_PLAN_VARIANT_ID = "Cart.PlanVariantId"
"""The plan variant an order moves its contract to (SPEC §11)."""
ORDER_COMPONENT_SUBSCRIPTIONS = "Cart.ComponentSubscriptions"
"""The quantities an order sets (SPEC §11)."""
ORDER_DISCOUNT_SUBSCRIPTIONS = "Cart.DiscountSubscriptions"
"""The discounts and coupons an order gives its contract (SPEC §11)."""
CHANGE_DATE = "ChangeDate"
"""When an order's plan change, quantities and discounts take effect (SPEC §11)."""


def item_path(items: str, index: int | None, field: str) -> str:
    """`field` of the `index`th of `items` (`consumptions[3].quantity`); a field of the
    whole body (no index) by its own name."""
    return field if index is None else f"{items}[{index}].{field}"


def usage_error(error: FieldError, items: str | None = None) -> FieldError:
    """A usage rule's error, its field named as the contract usage API names it; within
    `items` (an order's usages) when given and the error has an index."""
    name = USAGE_FIELDS.get(error.field, error.field)
    if items is None or error.index is None:
        return FieldError(name, error.code, error.message)
    return FieldError(item_path(items, error.index, name), error.code, error.message, error.index)

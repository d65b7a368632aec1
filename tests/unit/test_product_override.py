"""An override of nothing is no override: stored, billed and compared as none."""

from __future__ import annotations

from decimal import Decimal

from arrears.domain.usage import ProductOverride, product_override


def test_an_override_with_neither_price_nor_text_is_none() -> None:
    assert product_override(None, None, None) is None
    assert product_override(None, "", "") is None


def test_an_override_with_a_price_or_a_text_is_kept() -> None:
    assert product_override(Decimal("0.25"), None, None) == ProductOverride(Decimal("0.25"))
    assert product_override(None, "Backup", None) == ProductOverride(name="Backup")
    assert product_override(Decimal(0), "", "") == ProductOverride(Decimal(0), "", "")

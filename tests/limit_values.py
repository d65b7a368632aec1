"""Hypothesis strategies for everything the service accepts (`domain.limits`), with the
extremes drawn often: quantities and prices from 0 to 999999999999.999999, tiers, the
four pricing models, tax rates from 0 to 100 %. Built from text, so that no decimal
context rounds a value on the way."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from arrears.domain.pricing import Graduated, Package, PerUnit, Pricing, Tier, Volume

MOST = Decimal("999999999999.999999")
"""The largest quantity or price accepted: below 10^12, 6 places."""
MICRO = Decimal("0.000001")


def millionths(lowest: int, highest: int) -> st.SearchStrategy[Decimal]:
    """Decimals of 6 places from `lowest` to `highest` millionths."""
    return st.integers(lowest, highest).map(lambda units: Decimal(f"{units}E-6"))


accepted = st.one_of(
    st.sampled_from([Decimal(0), MICRO, Decimal(1), MOST]), millionths(0, 10**18 - 1)
)
"""Any quantity or price accepted."""

positive = st.one_of(st.sampled_from([MICRO, MOST]), millionths(1, 10**18 - 1))
"""Any tier bound or package size accepted."""

tax_rates = st.one_of(
    st.sampled_from([Decimal(0), Decimal(100)]),
    st.integers(0, 100 * 10**4).map(lambda rate: Decimal(f"{rate}E-4")),
)


@st.composite
def tiers(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = sorted(draw(st.sets(positive, max_size=4)))
    prices = draw(st.lists(accepted, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    return tuple(Tier(up, p) for up, p in zip([*bounds, None], prices, strict=True))


pricings: st.SearchStrategy[Pricing] = st.one_of(
    st.builds(PerUnit, accepted),
    st.builds(Graduated, tiers()),
    st.builds(Volume, tiers()),
    st.builds(Package, positive, accepted),
)

"""The limits of what Arrears accepts, and why everything it accepts can be billed.

Two kinds of limit, stated here once (and for users in `docs/api-conventions.md`):

**Refused at the door.** A request carrying a value beyond these answers `422` naming
the field and the limit; nothing beyond them is ever stored.

- Quantities (usage, rated items, free quotas, tier bounds, package sizes) and prices
  (per unit, per package, override prices, recurring fees, rated items' prices): at
  least 0, below 10**MAX_INTEGER_DIGITS, at most 6 decimal places.
- Tax rates: 0 to 100 percent, at most 4 decimal places.
- Instants (start, end and due dates, the test clock): in [EARLIEST, LATEST).
- Billing periods: 1 to MAX_PERIOD_QUANTITY days, weeks, months or years.

**Given room.** What grows with the number of entries cannot be refused entry by entry
(no single entry is at fault), so storage and arithmetic are sized for the most that
the limits above allow:

- A period's quantity of one component is below 10**MAX_PERIOD_SUM_DIGITS: fewer than
  10**MAX_ENTRY_DIGITS entries exist at all (their ids are 64-bit), each below
  10**MAX_INTEGER_DIGITS.
- Every line amount, subtotal, tax amount and total is below 10**MAX_AMOUNT_DIGITS in
  size (see `MAX_AMOUNT_DIGITS`). Invoice lines and totals are stored with that many
  integer digits and 6 places on both databases (`store.types.WideDecimal`), and
  every context rating or rounding computes in has `DECIMAL_PRECISION` digits,
  more than any product or sum of them needs, so nothing rounds or overflows.
- Every billing date the service computes lies before LATEST_BILLING_DATE, inside the
  calendar (years 1 to 9999): billing never looks further than one period past the
  clock, and the clock, like every instant, stays before LATEST.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

__all__ = [
    "DECIMAL_PRECISION",
    "EARLIEST",
    "LATEST",
    "LATEST_BILLING_DATE",
    "MAX_AMOUNT_DIGITS",
    "MAX_ENTRY_DIGITS",
    "MAX_INTEGER_DIGITS",
    "MAX_PERIOD_QUANTITY",
    "MAX_PERIOD_SUM_DIGITS",
    "MAX_TAX_RATE",
    "PRICE_PLACES",
    "QUANTITY_PLACES",
    "TAX_RATE_PLACES",
]

# -- refused at the door ------------------------------------------------------------------

MAX_INTEGER_DIGITS: Final = 12
"""Quantities and prices stay below 10**12 (a value below it with 6 places also fits
SQLite's 64-bit integers scaled by 10**6, as `store.types.ExactDecimal` stores it)."""

QUANTITY_PLACES: Final = 6
"""A quantity (usage, tier bound, package size, free quota) has at most 6 decimal places."""

PRICE_PLACES: Final = 6
"""A price per unit or per package, or a fee, has at most 6 decimal places."""

MAX_TAX_RATE: Final = 100
"""A tax rate is a percentage from 0 to 100."""

TAX_RATE_PLACES: Final = 4
"""A tax rate has at most 4 decimal places (19.6025 %)."""

EARLIEST: Final = datetime(1900, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(8000, 1, 1, tzinfo=UTC)
"""Instants a request may carry, and the test clock, lie in [EARLIEST, LATEST)."""

MAX_PERIOD_QUANTITY: Final = 1000
"""A billing period is at most 1000 of its unit (1000 days, weeks, months or years)."""

# -- given room ---------------------------------------------------------------------------

MAX_ENTRY_DIGITS: Final = 19
"""Fewer than 10**19 usage entries or rated items exist: entries are numbered by 64-bit
ids (2**63 < 10**19), and no database holds that many rows of anything."""

MAX_PERIOD_SUM_DIGITS: Final = MAX_INTEGER_DIGITS + MAX_ENTRY_DIGITS
"""A period's quantity of one component (and so any line's quantity) is below 10**31."""

MAX_AMOUNT_DIGITS: Final = MAX_PERIOD_SUM_DIGITS + QUANTITY_PLACES + MAX_INTEGER_DIGITS + 1
"""Every amount of an invoice (line, subtotal, tax, total) is below 10**50 in size.

All entries together, in every component and period, hold below 10**31 units, which
make fewer than 10**37 packages of the smallest size (10**-6), each priced below
10**12: the usage lines of an invoice, which price each entry at most once (a line
takes off what earlier invoices of its period charged), add up to less than 10**49 in
size, as does any one of them. Override lines and rated items are each below 10**24
and fewer than 10**19: below 10**43 together. So a subtotal is below 2 x 10**49, and
a tax of at most 100 % at most doubles it: below 10**50."""

DECIMAL_PRECISION: Final = 100
"""Significant digits of every decimal context that rates, sums or rounds money: an
amount has at most 50 + 6 digits, a tax rate 3 + 4, so every product and sum of them
is exact at this precision (the contexts trap `Inexact` all the same)."""

LATEST_BILLING_DATE: Final = datetime(9000, 1, 1, tzinfo=UTC)
"""Every billing date the service computes lies before this: at most one period (1000
years at the most) past an instant before LATEST, and so inside the calendar."""

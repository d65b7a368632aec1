"""Server-side paging and sorting of the console's tables, read leniently from the URL.

A page number or sort key the console does not know falls back to the first page and
the table's default order: a stale bookmark still opens a page, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from arrears.domain.paging import PageRequest
from arrears.services.console import Sort

__all__ = ["PAGE_SIZE", "Table", "table_of"]

PAGE_SIZE = 25
_LAST_PAGE = 1_000_000


@dataclass(frozen=True, slots=True)
class Table:
    """One table's place: its sort, its page, and the other query parameters to keep."""

    sort: Sort
    page: int
    keep: dict[str, str]
    prefix: str = ""

    @property
    def request(self) -> PageRequest:
        return PageRequest(skip=(self.page - 1) * PAGE_SIZE, take=PAGE_SIZE)

    def pages(self, total: int) -> int:
        return max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)

    def link(self, *, page: int | None = None, sort: str | None = None) -> str:
        """The query string of this table at another page or sorted by another column
        (the same column again reverses the order)."""
        values = dict(self.keep)
        key, descending = self.sort.key, self.sort.descending
        if sort is not None:
            descending = not descending if sort == key else False
            key = sort
            page = 1
        values[f"{self.prefix}sort"] = f"-{key}" if descending else key
        values[f"{self.prefix}page"] = str(page or self.page)
        return "?" + urlencode(values)

    def order_of(self, key: str) -> str:
        """`aria-sort` of a column header."""
        if key != self.sort.key:
            return "none"
        return "descending" if self.sort.descending else "ascending"


def table_of(
    query: Mapping[str, str],
    sorts: Mapping[str, object],
    default: Sort,
    *,
    keep: tuple[str, ...] = (),
    prefix: str = "",
) -> Table:
    raw_sort = query.get(f"{prefix}sort", "")
    key = raw_sort.removeprefix("-")
    sort = Sort(key, raw_sort.startswith("-")) if key in sorts else default
    try:
        page = min(max(int(query.get(f"{prefix}page", "1")), 1), _LAST_PAGE)
    except ValueError:
        page = 1
    kept = {name: query[name] for name in keep if query.get(name)}
    return Table(sort=sort, page=page, keep=kept, prefix=prefix)

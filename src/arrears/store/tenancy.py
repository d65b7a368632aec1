"""The base of every repository of seller-owned objects.

A repository is built for one seller, and every statement it runs goes through
`_scoped`, which adds `seller_id = :seller`. There is no method that takes another
seller's id: a foreign id is indistinguishable from one that does not exist. Where the
databases differ, a repository asks `_dialect`, the one its session carries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from arrears.domain.errors import Conflict, NotFound
from arrears.domain.paging import Page, PageRequest
from arrears.store.dialect import StoreDialect, dialect_of
from arrears.store.tables import TenantOwned

__all__ = ["TenantRepository", "batched", "next_position"]

R = TypeVar("R", bound=TenantOwned)
T = TypeVar("T")


def next_position(
    session: Session,
    position: InstrumentedAttribute[int],
    owner: InstrumentedAttribute[str],
    owner_id: str,
) -> int:
    """The position after the last of `owner_id`'s rows (0 for its first): rows kept in
    the order they were given. The caller holds the owner's row lock, so it is not raced."""
    last = session.execute(select(func.max(position)).where(owner == owner_id)).scalar()
    return 0 if last is None else last + 1


def batched(items: Iterable[T], size: int) -> Iterator[tuple[T, ...]]:
    """`items` in tuples of at most `size` (itertools.batched arrived in Python 3.12):
    lookups bind their ids chunk by chunk, below either database's parameter limit."""
    iterator = iter(items)
    while chunk := tuple(islice(iterator, size)):
        yield chunk


class TenantRepository:
    def __init__(self, session: Session, seller_id: str) -> None:
        self._session = session
        self.seller_id = seller_id

    @property
    def _dialect(self) -> StoreDialect:
        """What this database does its own way (`store/dialect.py`)."""
        return dialect_of(self._session)

    def _scoped(self, row_type: type[R]) -> Select[tuple[R]]:
        return select(row_type).where(row_type.seller_id == self.seller_id)

    def _row(self, row_type: type[R], id_: str, what: str, *, for_update: bool = False) -> R:
        query = self._scoped(row_type).where(row_type.id == id_)
        if for_update:
            query = query.with_for_update()
        row = self._session.execute(query).scalar_one_or_none()
        if row is None:
            raise NotFound(f"There is no {what} {id_}.")
        return row

    def _page(
        self, query: Select[tuple[R]], row_type: type[R], page: PageRequest, to: Callable[[R], T]
    ) -> Page[T]:
        total = self._session.execute(
            select(func.count()).select_from(query.order_by(None).subquery())
        ).scalar_one()
        rows = self._session.execute(
            query.order_by(row_type.created_at.desc(), row_type.id.desc())
            .offset(page.skip)
            .limit(page.take)
        ).scalars()
        return Page(items=[to(row) for row in rows], total=total)

    @contextmanager
    def _unique(self, conflict: str) -> Iterator[None]:
        """Write inside the block; a unique constraint it breaks becomes `Conflict`.

        The constraint, not a prior lookup, decides, so two concurrent requests cannot
        both pass. The savepoint keeps the surrounding transaction usable."""
        try:
            with self._session.begin_nested():
                yield
        except IntegrityError:
            raise Conflict(conflict) from None

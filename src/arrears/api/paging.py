"""`?skip=&take=` on every collection."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from arrears.domain.paging import MAX_SKIP, MAX_TAKE, PageRequest

__all__ = ["Paging"]


def _page_request(
    skip: Annotated[int, Query(ge=0, le=MAX_SKIP, description="Items to skip, newest first.")] = 0,
    take: Annotated[int, Query(ge=1, le=MAX_TAKE, description="Items to return.")] = 100,
) -> PageRequest:
    return PageRequest(skip=skip, take=take)


Paging = Annotated[PageRequest, Depends(_page_request)]

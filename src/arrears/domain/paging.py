"""Pages of a collection, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Page", "PageRequest"]

MAX_TAKE = 500
MAX_SKIP = 1_000_000_000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    skip: int = 0
    take: int = 100


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    """How many items the whole collection (with its filters) holds."""

"""What every request handler needs: settings, the database and the clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from arrears.config import Settings
from arrears.domain.clock import Clock
from arrears.store.database import Database

__all__ = ["AppContext", "Context"]


@dataclass(frozen=True, slots=True)
class AppContext:
    settings: Settings
    database: Database
    clock: Clock


def _context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(_context)]

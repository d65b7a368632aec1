"""Liveness and readiness probes; they need no key."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from arrears.api.context import Context
from arrears.api.encoding import ArrearsRoute
from arrears.api.problems import problem_response, problem_responses

router = APIRouter(route_class=ArrearsRoute, tags=["operations"])


class Health(BaseModel):
    status: Literal["ok", "ready"]


@router.get("/healthz", response_model=Health, operation_id="getHealth")
def healthz() -> Health:
    """The process is up and serving requests."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    operation_id="getReadiness",
    responses=problem_responses({503: "The database is not reachable."}),
)
def readyz(context: Context) -> object:
    """The database answers: the service can take requests."""
    if not context.database.ping():
        return problem_response(503, "The database is not reachable.")
    return Health(status="ready")

"""Contract usage API, metered usage (SPEC §5)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from arrears import metrics
from arrears.api.auth import SellerId
from arrears.api.context import AppContext, Context
from arrears.api.encoding import ArrearsRoute, encode_json, on_invalid_body
from arrears.api.models import (
    AnyDecimal,
    Instant,
    PascalModel,
    PlainDecimal,
    Price,
    Quantity,
    list_response,
)
from arrears.api.models import _plain as plain_decimal
from arrears.api.paging import Paging
from arrears.api.problems import problem_responses
from arrears.domain import wire
from arrears.domain.clock import Clock
from arrears.domain.errors import FieldError, NotFound
from arrears.domain.grammar import NotInGrammar, parse_decimal, parse_instant
from arrears.domain.ids import USAGE_ID_MAX
from arrears.domain.money import QUANTITY_PLACES
from arrears.domain.usage import (
    MAX_KEY_LENGTH,
    ContractTerms,
    UsageCandidate,
    UsageEntry,
    check_decimal,
    contract_rules,
    product_override,
)
from arrears.services import usage as service
from arrears.store.unit_of_work import UnitOfWork

router = APIRouter(prefix="/api/v1/contracts", route_class=ArrearsRoute, tags=["usage"])

ContractIdPath = Annotated[str, Path(alias="contractId")]


class ProductOverride(PascalModel):
    price_per_unit: Price | None = None
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    description: Annotated[str, StringConstraints(max_length=1000)] | None = None


# Its own class, not `ProductOverride`: a model in both requests and responses would be
# two OpenAPI schemas of one title (decimals differ), which generators refuse.
class ProductOverrideOut(PascalModel):
    price_per_unit: PlainDecimal | None
    name: str | None
    description: str | None


class NewUsage(PascalModel):
    due_date: Instant = Field(description="When the usage happened; decides its period.")
    component_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    quantity: AnyDecimal = Field(description="≥ 0, at most 6 decimal places; number or string.")
    key: Annotated[str, StringConstraints(max_length=MAX_KEY_LENGTH)] | None = Field(
        default=None, description="Makes the post idempotent per contract; empty is no key."
    )
    memo: Annotated[str, StringConstraints(max_length=1000)] | None = None
    product_override: ProductOverride | None = None


class UsageOut(PascalModel):
    id: str
    contract_id: str
    transferred_at: datetime
    component_id: str
    quantity: Quantity
    key: str | None
    due_date: datetime
    memo: str | None
    product_override: ProductOverrideOut | None
    invoice_id: str | None


async def _contract_rules_of_invalid_usage(request: Request, body: Any) -> list[FieldError]:
    """The contract's rules on the parts of an invalid usage body that are valid, so that
    an unknown field or a bad quantity does not hide a due date before the contract."""
    seller_id = getattr(request.state, "seller_id", None)
    if not isinstance(body, dict) or seller_id is None:
        return []
    errors = _quantity_rules(body.get("Quantity"))
    component_id = body.get("ComponentId")
    component_id = component_id if isinstance(component_id, str) and component_id else None
    try:
        due_date: datetime | None = parse_instant(body.get("DueDate"))
    except NotInGrammar:
        due_date = None
    if component_id is None and due_date is None:
        return errors
    context: AppContext = request.app.state.context
    contract_id = request.path_params["contractId"]
    terms = await run_in_threadpool(_terms_of, context, seller_id, contract_id)
    if terms is None:
        return errors
    return errors + [
        FieldError(wire.USAGE_FIELDS[e.field], e.code, e.message)
        for e in contract_rules(component_id, due_date, terms)
    ]


def _quantity_rules(raw: object) -> list[FieldError]:
    # The Quantity's own rules, which the domain checks when the body is valid (AnyDecimal
    # leaves them to it, to name them with the contract's rules).
    try:
        quantity = parse_decimal(raw)
    except NotInGrammar:
        return []  # the body's validation names it
    error = check_decimal(quantity, "Quantity", QUANTITY_PLACES)
    return [] if error is None else [error]


def _terms_of(context: AppContext, seller_id: str, contract_id: str) -> ContractTerms | None:
    with context.database.unit_of_work(seller_id, "read") as work:
        return service.terms_of(work, contract_id)


@router.post(
    "/{contractId}/usage",
    status_code=201,
    response_model=UsageOut,
    responses={
        200: {"model": UsageOut, "description": "A replay of a stored Key."},
        **problem_responses(
            {409: "The Key was used with different values, or the contract has its final invoice."}
        ),
    },
)
@on_invalid_body(_contract_rules_of_invalid_usage)
async def create_usage(
    contract_id: ContractIdPath, body: NewUsage, seller_id: SellerId, context: Context
) -> Response:
    """Post metered usage. A second post with the same `Key` and identical values answers
    200 with the stored entry; with different values 409."""
    return await store_usage(context, seller_id, contract_id, body)


async def store_usage(
    context: AppContext, seller_id: str, contract_id: str, body: NewUsage
) -> Response:
    """What a valid post does, whoever routed it (this route, or api/fast_lane.py)."""
    override = body.product_override
    candidate = UsageCandidate(
        contract_id=contract_id,
        component_id=body.component_id,
        quantity=body.quantity,
        due_date=body.due_date,
        key=body.key or None,
        memo=body.memo,
        # An override of nothing is stored as none; a replay must compare equal to it.
        override=product_override(override.price_per_unit, override.name, override.description)
        if override is not None
        else None,
    )
    # Group commit: concurrent posts share one transaction and one commit, each in its
    # own savepoint; the answer comes once the commit has made this entry durable.
    entry, created = await asyncio.wrap_future(
        context.database.unit_of_work_grouped(seller_id, partial(_post, context.clock, candidate))
    )
    if created:  # counted once committed
        metrics.USAGE_POSTS_STORED.inc()
    # Encoded straight from the entry: the same bytes as `json_response(usage_out(entry))`
    # (tests/unit/test_usage_answer.py), without building and dumping the pydantic model.
    return usage_response(entry, 201 if created else 200)


def _post(clock: Clock, candidate: UsageCandidate, work: UnitOfWork) -> tuple[UsageEntry, bool]:
    return service.post_usage(work, clock, candidate)


@router.get("/{contractId}/usage", response_model=list[UsageOut])
def list_usage(
    *,
    contract_id: ContractIdPath,
    seller_id: SellerId,
    context: Context,
    paging: Paging,
    due_from: Annotated[Instant | None, Query(alias="from")] = None,
    due_to: Annotated[Instant | None, Query(alias="to", description="Exclusive.")] = None,
    billed: bool | None = None,
) -> Response:
    """The contract's usage entries, latest due date first; `X-Total-Count` holds their number."""
    with context.database.unit_of_work(seller_id, "read") as work:
        page = service.usage_of(
            work, contract_id, service.UsageFilter(due_from, due_to, billed), paging
        )
    return list_response([usage_out(e) for e in page.items], page.total)


@router.delete(
    "/{contractId}/usage/{usageId}",
    status_code=204,
    responses=problem_responses({409: "The entry is billed."}),
)
def delete_usage(
    contract_id: ContractIdPath,
    usage_id: Annotated[str, Path(alias="usageId")],
    seller_id: SellerId,
    context: Context,
) -> Response:
    """Delete an unbilled entry; a billed one answers 409."""
    if not _is_usage_id(usage_id):
        raise NotFound(f"Contract {contract_id} has no usage entry {usage_id}.")
    with context.database.unit_of_work(seller_id) as work:
        service.delete_usage(work, contract_id, int(usage_id))
    return Response(status_code=204)


def _is_usage_id(text: str) -> bool:
    """Whether `text` can name a usage entry: ASCII digits of a positive 64-bit integer
    (`str.isdigit` alone takes other scripts' digits too)."""
    return text.isascii() and text.isdigit() and len(text) <= 19 and 0 < int(text) <= USAGE_ID_MAX


def usage_out(entry: UsageEntry) -> UsageOut:
    override = entry.override
    return UsageOut(
        id=str(entry.id),
        contract_id=entry.contract_id,
        transferred_at=entry.transferred_at,
        component_id=entry.component_id,
        quantity=entry.quantity,
        key=entry.key,
        due_date=entry.due_date,
        memo=entry.memo,
        product_override=ProductOverrideOut(
            price_per_unit=override.price_per_unit,
            name=override.name,
            description=override.description,
        )
        if override is not None
        else None,
        invoice_id=entry.invoice_id,
    )


def usage_response(entry: UsageEntry, status_code: int) -> Response:
    """`json_response(usage_out(entry), status_code)`, byte for byte."""
    return Response(usage_json(entry), status_code, media_type="application/json")


def usage_json(entry: UsageEntry) -> bytes:
    """`UsageOut`'s JSON of `entry`: its fields in its order under their aliases, decimals
    as `PlainDecimal` serializes them (with its very function, so they cannot drift),
    instants as the model's `datetime`s encode."""
    override = entry.override
    return encode_json(
        {
            "Id": str(entry.id),
            "ContractId": entry.contract_id,
            "TransferredAt": entry.transferred_at,
            "ComponentId": entry.component_id,
            "Quantity": plain_decimal(entry.quantity),
            "Key": entry.key,
            "DueDate": entry.due_date,
            "Memo": entry.memo,
            "ProductOverride": None
            if override is None
            else {
                "PricePerUnit": None
                if override.price_per_unit is None
                else plain_decimal(override.price_per_unit),
                "Name": override.name,
                "Description": override.description,
            },
            "InvoiceId": entry.invoice_id,
        }
    )

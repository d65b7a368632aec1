"""`arrears invoices ...`: corrections and payments for operators (SPEC §10), the same
use cases as the API's, printed as the API answers them with `--json`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.console import Console

from arrears.api import webhook_payloads
from arrears.api.encoding import json_response
from arrears.api.routers.corrections import credit_note_out, payment_out
from arrears.api.routers.invoices import invoice_out
from arrears.config import Settings, clock_for
from arrears.domain.credit_notes import LineCredit
from arrears.domain.errors import ArrearsError, Invalid
from arrears.domain.grammar import NotInGrammar, parse_decimal, parse_instant
from arrears.services import corrections, invoices
from arrears.store.unit_of_work import Database

__all__ = ["invoices_app"]

invoices_app = typer.Typer(help="Correct invoices and record payments.", no_args_is_help=True)
err = Console(stderr=True)

Seller = Annotated[str, typer.Option(help="The seller id the invoice belongs to.")]
Reason = Annotated[str, typer.Option(help="Why: printed on the credit note.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON.")]


@invoices_app.callback()
def _events() -> None:
    """Correct invoices and record payments."""
    # A void, a credit note or a payment writes its webhook events, whose bodies are
    # the API's JSON (docs/webhooks.md).
    webhook_payloads.install()


@invoices_app.command("void")
def void(invoice_id: str, seller: Seller, reason: Reason, as_json: AsJson = False) -> None:
    """Void an invoice: credit what is left, unbill its usage, reopen its period."""
    settings = Settings()
    try:
        with Database(settings.database_url).unit_of_work(seller) as work:
            done = corrections.void_invoice(work, clock_for(settings), invoice_id, reason=reason)
            invoice = invoices.invoice(work, invoice_id)
            standing = invoices.standings(work, [invoice_id])[invoice_id]
    except ArrearsError as error:
        raise _fail(error) from None
    if as_json:
        _print_json(invoice_out(invoice, standing))
        return
    credited = (
        f"credit note {done.credit_note.credit_note_number} of "
        f"{done.credit_note.draft.total} {done.credit_note.currency}"
        if done.credit_note
        else "nothing left to credit"
    )
    typer.echo(
        f"voided {invoice.invoice_number}: {credited}; {done.usage_entries} usage entries "
        f"and {done.rated_items} rated items unbilled"
    )


@invoices_app.command("credit")
def credit(
    invoice_id: str,
    seller: Seller,
    reason: Reason,
    line: Annotated[
        list[str] | None,
        typer.Option(help="LINE=AMOUNT, e.g. 2=2.50 (repeatable); none: all that is left."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Issue a credit note of an invoice, by line and amount or whole."""
    settings = Settings()
    try:
        lines = None if not line else [_line_credit(text) for text in line]
        with Database(settings.database_url).unit_of_work(seller) as work:
            note = corrections.issue_credit_note(
                work, clock_for(settings), invoice_id, reason=reason, lines=lines
            )
    except ArrearsError as error:
        raise _fail(error) from None
    if as_json:
        _print_json(credit_note_out(note))
        return
    typer.echo(
        f"{note.credit_note_number}: {note.draft.subtotal} + {note.draft.tax_amount} tax = "
        f"{note.draft.total} {note.currency}"
    )


@invoices_app.command("pay")
def pay(
    invoice_id: str,
    *,
    seller: Seller,
    amount: Annotated[str, typer.Option(help="The amount received, e.g. 103.35.")],
    reference: Annotated[str, typer.Option(help="The payment's reference (idempotent).")],
    paid_at: Annotated[
        str | None, typer.Option(help="When it was paid (ISO 8601); default now.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Record a payment received for an invoice, at most its amount due."""
    settings = Settings()
    try:
        received = _decimal(amount, "--amount")
        when = None if paid_at is None else _instant(paid_at, "--paid-at")
        with Database(settings.database_url).unit_of_work(seller) as work:
            recorded = corrections.record_payment(
                work,
                clock_for(settings),
                invoice_id,
                amount=received,
                paid_at=when,
                reference=reference,
            )
    except ArrearsError as error:
        raise _fail(error) from None
    if as_json:
        _print_json(payment_out(recorded.payment))
        return
    payment = recorded.payment
    told = "recorded" if recorded.created else "recorded before"
    typer.echo(f"{told}: {payment.amount} on {invoice_id} ({payment.reference})")


def _line_credit(text: str) -> LineCredit:
    index, _, amount = text.partition("=")
    if not index.strip().isdigit():
        raise Invalid.one("--line", "invalid_format", f"{text!r} is not LINE=AMOUNT.")
    return LineCredit(int(index), _decimal(amount, "--line"))


def _decimal(text: str, option: str) -> Decimal:
    try:
        return parse_decimal(text.strip())
    except NotInGrammar as fault:
        raise Invalid.one(option, fault.code, fault.message) from None


def _instant(text: str, option: str) -> datetime:
    try:
        return parse_instant(text.strip())
    except NotInGrammar as fault:
        raise Invalid.one(option, fault.code, fault.message) from None


def _print_json(model: BaseModel) -> None:
    typer.echo(bytes(json_response(model).body).decode())


def _fail(error: ArrearsError) -> typer.Exit:
    err.print(f"[red]error:[/red] {error.detail}")
    if isinstance(error, Invalid):
        for field_error in error.errors:
            err.print(f"  {field_error.field}: {field_error.message}")
    return typer.Exit(code=1)

"""`arrears invoices pdf|einvoice`: an issued invoice's documents (SPEC §12) written to a
file, read from the database as the API reads them (docs/documents.md).

`register(invoices_app)` adds both commands to the `invoices` command group.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from arrears.config import Settings
from arrears.documents.cii import cii_xml
from arrears.documents.facturx import facturx_pdf
from arrears.documents.model import InvoiceDocument
from arrears.documents.pdf import render_pdf
from arrears.documents.ubl import ubl_xml
from arrears.domain.errors import ArrearsError
from arrears.services.documents import invoice_document
from arrears.store.database import Database

__all__ = ["einvoice", "pdf", "register"]

err = Console(stderr=True)

InvoiceId = Annotated[str, typer.Argument(help="The invoice's id.")]
Seller = Annotated[
    str, typer.Option("--seller", envvar="ARREARS_SELLER_ID", help="The seller's id.")
]
Output = Annotated[Path, typer.Option("--output", "-o", help="The file to write.")]
_WRITERS: dict[str, Callable[[InvoiceDocument], bytes]] = {
    "cii": cii_xml,
    "ubl": ubl_xml,
    "facturx": facturx_pdf,
}


def register(invoices_app: typer.Typer) -> None:
    invoices_app.command("pdf")(pdf)
    invoices_app.command("einvoice")(einvoice)


def pdf(invoice_id: InvoiceId, seller: Seller, output: Output) -> None:
    """Write an issued invoice's PDF, in its customer's locale (as GET .../pdf)."""
    _write(seller, invoice_id, output, render_pdf)


def einvoice(
    invoice_id: InvoiceId,
    seller: Seller,
    output: Output,
    syntax: Annotated[str, typer.Option(help="cii, ubl or facturx.")] = "facturx",
) -> None:
    """Write an issued invoice's EN 16931 e-invoice (as GET .../einvoice?syntax=)."""
    if syntax not in _WRITERS:
        err.print(f"[red]error:[/red] --syntax is one of {', '.join(_WRITERS)}, not {syntax}")
        raise typer.Exit(code=2)
    _write(seller, invoice_id, output, _WRITERS[syntax])


def _write(
    seller: str, invoice_id: str, output: Path, make: Callable[[InvoiceDocument], bytes]
) -> None:
    database = Database(Settings().database_url)
    try:
        with database.unit_of_work(seller, "read") as work:
            document = invoice_document(work, invoice_id)
        output.write_bytes(make(document))
    except ArrearsError as error:
        err.print(f"[red]error:[/red] {error.detail}")
        raise typer.Exit(code=1) from None
    finally:
        database.dispose()
    typer.echo(f"wrote {document.number} to {output}")

"""The document as an HTML page (Jinja2), for browsers and for sending by mail."""

from __future__ import annotations

import functools
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from arrears.documents.model import InvoiceDocument
from arrears.documents.view import document_view

__all__ = ["render_html"]

_TEMPLATES = Path(__file__).parent / "templates"


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(document: InvoiceDocument) -> str:
    """The HTML page of `document` in its customer's locale; a pure function of it.
    The page is self-contained: styles inline, the logo a `data:` URI."""
    template = _environment().get_template("document.html.j2")
    return template.render(view=document_view(document))

"""The official EN 16931 business rules (CEN's validation artefacts in
`../shared/einvoicing/`, run by SaxonC-HE) as a test helper: the two stylesheets are
compiled once per test session, as `validate.py` beside them does per file."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from lxml import etree
from saxonche import PySaxonProcessor, PyXsltExecutable

_SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}


def rules_directory() -> Path:
    """`EN16931_DIR`, else the first `shared/einvoicing` beside the checkout or above it,
    else the copy in `tests/einvoicing` (the same artefacts, for a clone without them)."""
    if configured := os.environ.get("EN16931_DIR"):
        return Path(configured)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "einvoicing"
        if (candidate / "validate.py").is_file():
            return candidate
    return Path(__file__).resolve().parent / "einvoicing"


@functools.cache
def _processor() -> PySaxonProcessor:
    return PySaxonProcessor(license=False)


@functools.cache
def _stylesheet(syntax: str) -> PyXsltExecutable:
    path = rules_directory() / syntax / "xslt" / f"EN16931-{syntax.upper()}-validation.xslt"
    return _processor().new_xslt30_processor().compile_stylesheet(stylesheet_file=str(path))


def failed_rules(xml: bytes) -> list[str]:
    """Every fatal rule `xml` breaks, as `BR-xx: text`; empty when it passes."""
    root = etree.fromstring(xml)
    syntax = "cii" if "CrossIndustryInvoice" in root.tag else "ubl"
    node = _processor().parse_xml(xml_text=xml.decode("utf-8"))
    svrl = _stylesheet(syntax).transform_to_string(xdm_node=node)
    report = etree.fromstring(svrl.encode())
    return [
        f"{failed.get('id')}: {' '.join(''.join(failed.itertext()).split())[:300]}"
        for failed in report.iterfind(".//svrl:failed-assert", _SVRL)
        if failed.get("flag", "fatal") == "fatal"
    ]

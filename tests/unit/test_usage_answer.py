"""A usage post's answer is encoded straight from the stored entry (`usage_json`), and
its bytes are exactly those of the `UsageOut` model rendered as every response is."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from arrears.api.encoding import json_response
from arrears.api.routers.usage import usage_json, usage_out, usage_response
from arrears.domain.usage import UsageEntry, product_override

# Stored text never holds U+0000 (every body refuses it) or a lone surrogate (no JSON
# encoder writes one).
_TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=20)
_DECIMALS = st.decimals(
    min_value=Decimal(0), max_value=Decimal("999999999999"), places=6, allow_nan=False
) | st.sampled_from([Decimal(0), Decimal("0.000000"), Decimal("12.500000"), Decimal("1E+3")])
# Hypothesis bounds aware datetimes by naive ones, in the drawn zone (UTC).
_INSTANTS = st.datetimes(
    min_value=datetime(1900, 1, 1),  # noqa: DTZ001
    max_value=datetime(7999, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@st.composite
def _entries(draw: st.DrawFn) -> UsageEntry:
    override = draw(
        st.none()
        | st.builds(
            product_override,
            st.none() | _DECIMALS,
            st.none() | _TEXT,
            st.none() | _TEXT,
        )
    )
    return UsageEntry(
        id=draw(st.integers(min_value=1, max_value=2**53)),
        contract_id=draw(_TEXT),
        component_id=draw(_TEXT),
        quantity=draw(_DECIMALS),
        due_date=draw(_INSTANTS),
        transferred_at=draw(_INSTANTS),
        key=draw(st.none() | _TEXT),
        memo=draw(st.none() | _TEXT),
        override=override,
        invoice_id=draw(st.none() | _TEXT),
    )


@given(_entries())
def test_usage_answer_is_the_models_bytes(entry: UsageEntry) -> None:
    assert usage_json(entry) == json_response(usage_out(entry)).body


def test_usage_answer_has_the_models_headers_and_status() -> None:
    entry = UsageEntry(
        id=7,
        contract_id="c",
        component_id="m",
        quantity=Decimal("2.50"),
        due_date=datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
        transferred_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    for status in (200, 201):
        direct, model = usage_response(entry, status), json_response(usage_out(entry), status)
        assert (direct.status_code, direct.body) == (model.status_code, model.body)
        assert direct.raw_headers == model.raw_headers

"""The canonical text of instants: the fast paths (an instant already in UTC, a text
already canonical) give exactly what the general conversion gives (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from arms_ledger.ledger.domain.clock import (
    MICROSECOND,
    MicrosecondsFrom,
    canonical,
    format_instant,
    format_recorded,
    instant,
)
from hypothesis import given, settings
from hypothesis import strategies as st

MOMENTS = st.datetimes(
    min_value=datetime(1945, 1, 2), max_value=datetime(2100, 12, 30), timezones=st.just(UTC)
)
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


def general(value: datetime, spec: str) -> str:
    """The conversion every instant went through before the fast path."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec=spec) + "Z"


@settings(max_examples=500)
@given(MOMENTS, OFFSETS)
def test_formatting_in_utc_or_any_offset_is_the_general_conversion(moment, offset):
    for value in (moment, moment.astimezone(offset)):
        spec = "microseconds" if value.microsecond else "seconds"
        assert format_instant(value) == general(value, spec)
        assert format_recorded(value) == general(value, "microseconds")


@settings(max_examples=500)
@given(MOMENTS, OFFSETS, st.sampled_from(["Z", "+00:00", "offset", "naive", " ", "date"]))
def test_canonical_is_the_text_formatted_again(moment, offset, form):
    text = format_instant(moment)
    if form == "+00:00":
        text = text[:-1] + "+00:00"
    elif form == "offset":
        text = moment.astimezone(offset).isoformat()
    elif form == "naive":
        text = text[:-1]
    elif form == " ":
        text = text.replace("T", " ")
    elif form == "date":
        text = text[:10]
    value = instant(text)
    assert canonical(text, value) == format_instant(value)


def test_an_already_canonical_text_is_returned_as_given():
    text = "2026-02-06T14:30:00Z"
    assert canonical(text, instant(text)) is text
    assert canonical("2026-02-06 14:30:00Z", instant(text)) == text


@settings(max_examples=300)
@given(MOMENTS, st.lists(st.integers(0, 3_000_000), max_size=40))
def test_a_run_of_microseconds_is_formatted_as_each_instant_is(start, indexes):
    times = MicrosecondsFrom(start)
    for index in [
        0,
        1,
        *indexes,
        999_999 - start.microsecond,
        1_000_000 - start.microsecond,
    ]:
        at = start + index * MICROSECOND
        assert times.at(index) == at
        assert times.text(index) == format_recorded(at)

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.kafka.wire import (
    MAX_SCHEMA_ID,
    Framing,
    backoff_seconds,
    confluent_header,
    confluent_ids,
    confluent_schema_id,
    framing_of,
    subject_of,
)


@pytest.mark.parametrize(
    ("data", "framing"),
    [
        (b"\xc3\x01" + bytes(8) + b"body", Framing.SINGLE_OBJECT),
        (b"\x00\x00\x00\x00\x07body", Framing.CONFLUENT),
        (b"\x00", Framing.CONFLUENT),  # announced, though too short to name an id
        (b"hello", None),
        (b"\xc3\x02", None),
        (b"", None),
    ],
)
def test_the_first_bytes_tell_the_framing(data: bytes, framing: Framing | None) -> None:
    assert framing_of(data) is framing


@given(st.integers(min_value=0, max_value=MAX_SCHEMA_ID), st.binary(max_size=20))
def test_a_confluent_header_names_its_id_big_endian(schema_id: int, body: bytes) -> None:
    header = confluent_header(schema_id)
    assert header == b"\x00" + schema_id.to_bytes(4, "big")
    assert confluent_schema_id(header + body) == schema_id
    assert framing_of(header + body) is Framing.CONFLUENT


def test_ids_outside_a_java_int_are_refused() -> None:
    with pytest.raises(ValueError):
        confluent_header(-1)
    with pytest.raises(ValueError):
        confluent_header(2**31)


def test_too_short_to_hold_an_id() -> None:
    assert confluent_schema_id(b"\x00\x00\x01") is None


def test_confluent_ids_of_a_batch_skip_everything_else() -> None:
    values = [
        confluent_header(7) + b"x",
        confluent_header(7) + b"y",
        confluent_header(300) + b"z",
        b"\xc3\x01" + bytes(8),
        b"\x00\x01",  # too short
        b"\x00\xff\xff\xff\xff" + b"x",  # above any id a registry hands out: never looked up
        None,
        b"",
    ]
    assert confluent_ids(values) == {7, 300}


def test_topic_name_strategy() -> None:
    assert subject_of("parcelflow.scans.flight") == "parcelflow.scans.flight-value"


def test_backoff_doubles_and_is_bounded() -> None:
    delays = [backoff_seconds(n, first=0.5, cap=30) for n in range(1, 12)]
    assert delays[:7] == [0.5, 1, 2, 4, 8, 16, 30]
    assert set(delays[6:]) == {30}
    assert backoff_seconds(10_000, cap=30) == 30
    with pytest.raises(ValueError):
        backoff_seconds(0)

from __future__ import annotations

import io

import pytest

from streams.events import Reason, ScanEvent, to_mapping
from streams.publish import LineError, format_of, read_csv, read_jsonl
from tests.unit.test_events import BREAKDOWN, SORTED


def test_jsonl_reports_line_numbers_and_reasons() -> None:
    import json

    text = "\n".join(
        [
            json.dumps(to_mapping(BREAKDOWN)),
            "",
            "{not json",
            "[1, 2]",
            json.dumps({**to_mapping(SORTED), "hub": "XYZ"}),
            json.dumps(to_mapping(SORTED)),
        ]
    )
    items = list(read_jsonl(io.StringIO(text)))
    assert [n for n, _ in items] == [1, 3, 4, 5, 6]
    assert items[0][1] == BREAKDOWN and items[4][1] == SORTED
    errors = [item for _, item in items if isinstance(item, LineError)]
    assert [(e.line, e.reason) for e in errors] == [
        (3, Reason.UNDECODABLE),
        (4, Reason.UNDECODABLE),
        (5, Reason.UNKNOWN_HUB),
    ]
    assert str(errors[2]).startswith("line 5: unknown_hub: unknown hub 'XYZ'")


def test_csv_with_empty_cells_and_a_bad_row() -> None:
    text = (
        "event_id,event_time,hub,read_point,event_type,parcel_id,weight_grams,flight_id,uld_id\n"
        "e1,2026-11-24T10:00:00Z,LGG,BD-1,ULD_BREAKDOWN,P1,480,CK251-20261124,PMC1\n"
        "e2,2026-11-24T10:00:00Z,LGG,STAND,FLIGHT_ARRIVED,,,CK251-20261124,\n"
        "e3,2026-11-24T10:00:00Z,LGG,BD-1,ULD_BREAKDOWN,P3,-5,CK251-20261124,PMC1\n"
        "e4,2026-11-24T10:00:00Z,LGG,BD-1,ULD_BREAKDOWN,P3,5,CK251,PMC1,extra\n"
    )
    items = list(read_csv(io.StringIO(text)))
    assert isinstance(items[0][1], ScanEvent) and items[0][1].weight_grams == 480
    assert isinstance(items[1][1], ScanEvent) and items[1][1].parcel_id is None
    assert items[2] == (4, LineError(4, Reason.BAD_WEIGHT, "weight -5 g is outside 1–100000 g"))
    assert items[3][0] == 5 and isinstance(items[3][1], LineError) and items[3][1].reason is Reason.BAD_FIELD


@pytest.mark.parametrize(
    ("name", "explicit", "fmt"),
    [("a.csv", None, "csv"), ("a.jsonl", None, "jsonl"), ("-", None, "jsonl"), ("-", "csv", "csv")],
)
def test_format_detection(name: str, explicit: str | None, fmt: str) -> None:
    assert format_of(name, explicit) == fmt


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        format_of("a.txt", "xml")

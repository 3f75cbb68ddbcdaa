from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from streams.events import Reason, ScanEvent, to_mapping
from streams.ingest.publish import FormatError, LineError, format_of, read_csv, read_jsonl
from tests.support.broker import free_port
from tests.support.scans import BREAKDOWN, SORTED
from tests.support.workers import cli


def test_jsonl_reports_line_numbers_and_reasons() -> None:
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
    items = list(read_jsonl(io.BytesIO(text.encode())))
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
    items = list(read_csv(io.BytesIO(text.encode())))
    assert isinstance(items[0][1], ScanEvent) and items[0][1].weight_grams == 480
    assert isinstance(items[1][1], ScanEvent) and items[1][1].parcel_id is None
    assert items[2] == (4, LineError(4, Reason.BAD_WEIGHT, "weight -5 g is outside 1–100000 g"))
    assert items[3][0] == 5 and isinstance(items[3][1], LineError) and items[3][1].reason is Reason.BAD_FIELD


CSV_HEADER = b"event_id,event_time,hub,read_point,event_type,parcel_id,weight_grams,flight_id,uld_id\n"
CSV_ROW = b"e1,2026-11-24T10:00:00Z,LGG,BD-1,ULD_BREAKDOWN,P1,480,CK251-20261124,PMC1\n"


def test_a_line_that_is_not_utf8_is_named_and_the_others_are_read() -> None:
    good = json.dumps(to_mapping(BREAKDOWN)).encode() + b"\n"
    latin1 = json.dumps({**to_mapping(SORTED), "read_point": "tri é"}, ensure_ascii=False).encode("latin-1")
    column = latin1.index(b"\xe9") + 1
    items = list(read_jsonl(io.BytesIO(good + latin1 + b"\n" + good)))
    assert items == [
        (1, BREAKDOWN),
        (2, LineError(2, Reason.UNDECODABLE, f"not UTF-8: byte 0xe9 at column {column}")),
        (3, BREAKDOWN),
    ]


def test_a_csv_line_that_is_not_utf8_is_named_and_the_others_are_read() -> None:
    bad = CSV_ROW.replace(b"BD-1", b"tri \xe8 1")  # Latin-1 è, after 32 one-byte characters
    items = list(read_csv(io.BytesIO(CSV_HEADER + CSV_ROW + bad + "e1,2026-11-24T10:00:00Z,LGG,tri è".encode())))
    assert items[0][0] == 2 and isinstance(items[0][1], ScanEvent)
    assert items[1] == (3, LineError(3, Reason.UNDECODABLE, "not UTF-8: byte 0xe8 at column 33"))
    assert items[2][0] == 4 and isinstance(items[2][1], LineError) and items[2][1].reason is Reason.MISSING_FIELD


def test_the_column_of_a_bad_byte_counts_characters_not_bytes() -> None:
    [(number, error)] = list(read_jsonl(io.BytesIO('{"read_point": "é"'.encode() + b"\xff}")))
    assert (number, error) == (1, LineError(1, Reason.UNDECODABLE, "not UTF-8: byte 0xff at column 19"))


def test_a_byte_order_mark_is_not_part_of_the_first_field_name() -> None:
    [(_, event)] = list(read_csv(io.BytesIO(b"\xef\xbb\xbf" + CSV_HEADER + CSV_ROW)))
    assert isinstance(event, ScanEvent) and event.event_id == "e1"
    [(_, event)] = list(read_jsonl(io.BytesIO(b"\xef\xbb\xbf" + json.dumps(to_mapping(SORTED)).encode())))
    assert event == SORTED


def test_csv_lines_keep_their_physical_numbers_and_a_stray_quote_costs_one_line() -> None:
    text = CSV_HEADER + b"\r\n" + CSV_ROW.replace(b"BD-1", b'"BD-1') + b'e2,"2026-11-24T10:00:00Z"x\n' + CSV_ROW
    items = list(read_csv(io.BytesIO(text)))
    assert [(n, getattr(item, "detail", "event")) for n, item in items] == [
        (3, "not CSV: unexpected end of data"),
        (4, "not CSV: ',' expected after '\"'"),
        (5, "event"),
    ]


def test_csv_rows_after_a_header_that_cannot_be_read_say_so() -> None:
    items = list(read_csv(io.BytesIO(CSV_HEADER.replace(b"hub", b"h\xfcb") + CSV_ROW)))
    assert items == [
        (1, LineError(1, Reason.UNDECODABLE, "not UTF-8: byte 0xfc at column 22")),
        (2, LineError(2, Reason.BAD_FIELD, "no field names: the header (line 1) was rejected")),
    ]


@pytest.mark.parametrize(
    ("name", "explicit", "fmt"),
    [("a.csv", None, "csv"), ("a.jsonl", None, "jsonl"), ("-", None, "jsonl"), ("-", "csv", "csv")],
)
def test_format_detection(name: str, explicit: str | None, fmt: str) -> None:
    assert format_of(name, explicit) == fmt


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(FormatError, match="unknown format"):
        format_of("a.txt", "xml")


def test_a_file_without_a_valid_line_is_checked_without_kafka(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"hub": "LGG"}\n\n[1]\n')
    result = cli("publish", str(path), "--bootstrap", f"127.0.0.1:{free_port()}", timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"{path}: line 1: missing_field: event_time is missing" in result.stderr
    assert f"{path}: line 3: undecodable: not a JSON object" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "sent 0, rejected 2"


def test_rejected_lines_and_file_names_are_printed_literally(tmp_path: Path) -> None:
    path = tmp_path / "[red]scans.jsonl"  # Rich markup would eat the tag
    row = {**to_mapping(SORTED), "event_type": "[bold]EVIL[/bold]"}
    path.write_text(json.dumps(row) + "\n" + json.dumps({**row, "[i]x[/i]": 1}) + "\n")
    result = cli("publish", str(path), "--bootstrap", f"127.0.0.1:{free_port()}", timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"{path}: line 1: unknown_event_type: unknown event type '[bold]EVIL[/bold]'" in result.stderr
    assert f"{path}: line 2: bad_field: unknown field(s): '[i]x[/i]'" in result.stderr


def test_an_error_naming_user_input_is_printed_literally() -> None:
    result = cli("publish", "/nonexistent/[bold]scans[/bold].jsonl")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: /nonexistent/[bold]scans[/bold].jsonl: no such file"


def test_non_utf8_lines_from_stdin_are_named_and_the_rest_is_read() -> None:
    header = "\ufeffevent_time,hub,read_point,event_type,parcel_id,weight_grams,sorter_id\n".encode()
    lines = [b"2026-11-24T10:00:00Z,LGG,IND-1,INDUCTED,P1,480,LGG-XB1\n"] * 3
    lines[1] = lines[1].replace(b"IND-1", b"IND-\xe8")
    lines[2] = lines[2].replace(b"LGG,", b"XYZ,", 1)
    stdin = header + lines[1] + lines[2]  # no valid line: nothing needs a broker
    result = cli("publish", "-", "--format", "csv", "--bootstrap", f"127.0.0.1:{free_port()}", stdin=stdin)
    assert result.returncode == 2, result.stderr
    assert "-: line 2: undecodable: not UTF-8: byte 0xe8 at column 30" in result.stderr
    assert "-: line 3: unknown_hub: unknown hub 'XYZ'" in result.stderr  # read on, and the BOM left the header intact
    assert result.stderr.strip().splitlines()[-1] == "sent 0, rejected 2"

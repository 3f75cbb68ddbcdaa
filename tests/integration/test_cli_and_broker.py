"""The CLI and the broker script as a user meets them, on the real broker."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from streams.events import from_mapping
from streams.kafka.codec import Codec
from streams.kafka.topics import Topics
from tests.support.broker import Broker, days_ago_ms, free_port, unique_name
from tests.support.paths import KAFKA_SH
from tests.support.pipeline import read_all
from tests.support.workers import cli

pytestmark = pytest.mark.broker

CSV = (
    "event_time,hub,read_point,event_type,parcel_id,weight_grams,sorter_id,chute,destination,trailer_id\n"
    "2026-11-24T10:00:00Z,LGG,IND-1,INDUCTED,P1,480,LGG-XB1,,,\n"
    "2026-11-24T10:01:00Z,LGG,SCAN-1,SORTED,P1,480,LGG-XB1,C12,PAR,\n"
    "2026-11-24T10:02:00Z,LGG,SCAN-1,SORTED,P2,,LGG-XB1,C12,PAR,\n"
    "2026-11-24T10:30:00Z,LGG,DOCK-3,LOADED,P1,480,,,PAR,LGG-PAR-1\n"
)


def test_publish_csv_from_stdin_lands_on_source_topics_keyed_and_timestamped(kafka_bootstrap: str) -> None:
    prefix = unique_name("csv")
    result = cli("publish", "-", "--format", "csv", "--bootstrap", kafka_bootstrap, "--prefix", prefix, stdin=CSV)
    assert result.returncode == 2
    assert "-: line 4: missing_field: SORTED needs weight_grams" in result.stderr
    assert "sent 3, rejected 1" in result.stderr

    topics = Topics(prefix)
    records = read_all(kafka_bootstrap, list(topics.sources), at_least=3)
    codec = Codec()
    got = {(r.topic, r.key, r.timestamp, codec.decode(r.value)) for r in records}
    rows = [dict(zip(CSV.splitlines()[0].split(","), line.split(","), strict=True)) for line in CSV.splitlines()[1:]]
    wanted = set()
    for row in (rows[0], rows[1], rows[3]):
        event = from_mapping(row)
        assert event.parcel_id is not None
        wanted.add((topics.source(event.source), event.parcel_id.encode(), event.event_time_ms, event))
    assert got == wanted


def test_publish_all_valid_exits_zero(kafka_bootstrap: str, tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("\n".join(CSV.splitlines()[:3]) + "\n")
    result = cli("publish", str(path), "--bootstrap", kafka_bootstrap, "--prefix", unique_name("ok"))
    assert result.returncode == 0, result.stderr
    assert "sent 2, rejected 0" in result.stderr


def test_unreachable_broker_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text(CSV)
    result = cli("publish", str(path), "--bootstrap", f"127.0.0.1:{free_port()}", timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot reach Kafka")


def test_missing_file_and_bad_settings_are_one_line() -> None:
    missing = cli("publish", "/nonexistent/scans.jsonl")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: /nonexistent/scans.jsonl: no such file"
    bad = cli("publish", "-", env={"PARCELFLOW_METRICS_PORT": "x"}, stdin="")
    assert bad.returncode == 1 and "PARCELFLOW_METRICS_PORT must be a whole number" in bad.stderr


def test_broker_script_reuses_a_running_broker(kafka_broker: Broker) -> None:
    if kafka_broker.data_dir is None:
        pytest.skip("KAFKA_BOOTSTRAP points at a broker this session did not start")
    flags = ["--dir", str(kafka_broker.data_dir)]
    again = subprocess.run([str(KAFKA_SH), "start", *flags], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0
    assert again.stdout.strip() == kafka_broker.bootstrap
    assert "reusing broker" in again.stderr
    status = subprocess.run([str(KAFKA_SH), "status", *flags], capture_output=True, text=True, timeout=30)
    assert status.returncode == 0 and kafka_broker.bootstrap in status.stdout


def test_publish_a_large_file_with_progress(kafka_bootstrap: str, tmp_path: Path) -> None:
    from tests.support.scan_files import make_scan_file

    text, expected = make_scan_file(seed=3, parcels=600)
    path = tmp_path / "big.jsonl"
    path.write_text(text)
    assert len(text.splitlines()) > 2000  # progress updates every 1000 lines
    result = cli("publish", str(path), "--bootstrap", kafka_bootstrap, "--prefix", unique_name("big"))
    assert result.returncode == 2, result.stderr
    assert f"sent {len(expected.rows)}, rejected {len(expected.bad_lines)}" in result.stderr


def test_a_line_the_broker_refuses_is_named_and_every_other_line_is_delivered(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    start_ms, future_ms = days_ago_ms(30), int(time.time() * 1000) + 2 * 24 * 3_600_000  # refused: > 1 h ahead
    rows = [
        {
            "event_id": f"r{n}",
            "event_time": future_ms if n == 150 else start_ms + n * 1000,
            "hub": "LGG",
            "read_point": "SCAN-1",
            "event_type": "SORTED",
            "parcel_id": f"P{n % 4}",  # few keys: the refused record shares its batch and partition with others
            "weight_grams": 480,
            "sorter_id": "LGG-XB1",
        }
        for n in range(1, 301)
    ]
    path = tmp_path / "scans.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    prefix = unique_name("refused")
    result = cli("publish", str(path), "--bootstrap", kafka_bootstrap, "--prefix", prefix)
    assert result.returncode == 2, result.stderr
    assert f"{path}: line 150: refused: broker: InvalidTimestampError" in result.stderr
    assert "h ahead of this machine's clock" in result.stderr
    assert "sent 299, rejected 1" in result.stderr

    records = read_all(kafka_bootstrap, list(Topics(prefix).sources), at_least=299)
    ids = sorted(Codec().decode(r.value).event_id for r in records)
    assert ids == sorted(f"r{n}" for n in range(1, 301) if n != 150)  # every other line, each once

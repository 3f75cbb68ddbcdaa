"""The network simulator: realistic scan events of the hub network, their ground truth, files or Kafka.

from streams.simulate import SimConfig, scan_events, simulate_to_files
config = SimConfig(start_ms=parse_start("2026-11-23T00:00:00Z"), seed=7, duration_s=3600)
for event in scan_events(config): ...
simulate_to_files(config, Path("out"), formats=("jsonl", "avro"))
"""

from streams.simulate.config import SimConfig
from streams.simulate.model import scan_events, scan_rows
from streams.simulate.run import RunProgress, RunResult, simulate_to_files, simulate_to_kafka

__all__ = [
    "RunProgress",
    "RunResult",
    "SimConfig",
    "scan_events",
    "scan_rows",
    "simulate_to_files",
    "simulate_to_kafka",
]

"""Where a parcelflow worker spends its CPU: py-spy samples (collapsed stacks) summarised by area."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import TypedDict

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::\d+)?\)$")

# Leaf-frame file → area, first match wins (paths as py-spy prints them).
AREAS = (
    ("parcelflow (streams/)", "/streams/"),
    ("fastavro", "/fastavro/"),
    ("prometheus_client", "/prometheus_client/"),
    ("faust", "/faust/"),
    ("mode (faust's service layer)", "/mode/"),
    ("aiokafka", "/aiokafka/"),
    ("asyncio", "/asyncio/"),
)


@dataclass(frozen=True)
class Frame:
    """One stack frame of a sample."""

    function: str
    file: str

    @property
    def name(self) -> str:
        """``module.py:function`` with the file's last two path parts."""
        return f"{'/'.join(self.file.split('/')[-2:])}:{self.function}"


def parse_collapsed(text: str) -> list[tuple[list[Frame], int]]:
    """py-spy ``--format raw`` (one ``frame;frame;... count`` line per distinct stack, root first)."""
    stacks = []
    for line in text.splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        frames = []
        for part in stack.split(";"):
            match = _FRAME.match(part.strip())
            if match:
                frames.append(Frame(match["function"], match["file"]))
        if frames:
            stacks.append((frames, int(count)))
    return stacks


def area_of(file: str) -> str:
    """Area a file belongs to."""
    path = "/" + file  # py-spy prints paths relative to sys.path entries: "streams/kafka/codec.py"
    for area, marker in AREAS:
        if marker in path:
            return area
    return "other (stdlib, interpreter)"


class Summary(TypedDict):
    """What :func:`summarise` returns: shares of the samples, by area and by function."""

    samples: int
    self_share_by_area: dict[str, float]
    inclusive_share_parcelflow_functions: dict[str, float]
    inclusive_share_top_functions: dict[str, float]


def summarise(text: str, top: int = 12) -> Summary:
    """Self time by area, and the functions that take the most time including their callees."""
    stacks = parse_collapsed(text)
    samples = sum(count for _, count in stacks)
    by_area: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for frames, count in stacks:
        by_area[area_of(frames[-1].file)] += count
        for name in {f.name for f in frames}:
            inclusive[name] += count
        for name in {f.name for f in frames if area_of(f.file) == AREAS[0][0]}:
            ours[name] += count
    share = {k: round(v / samples, 3) for k, v in by_area.most_common()} if samples else {}
    return {
        "samples": samples,
        "self_share_by_area": share,
        "inclusive_share_parcelflow_functions": {k: round(v / samples, 3) for k, v in ours.most_common(top)},
        "inclusive_share_top_functions": {k: round(v / samples, 3) for k, v in inclusive.most_common(top)},
    }

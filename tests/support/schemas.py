"""Source schemas as a next release might ship them, for the schema evolution tests."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

from streams.kafka.codec import load_source_schema, schema_dir
from streams.kafka.topics import Source


def expanded(source: Source) -> dict[str, Any]:
    """The current source schema with the header inlined, as JSON (what history/ files hold)."""
    schema = copy.deepcopy(load_source_schema(source))
    schema.pop("__fastavro_parsed", None)
    schema.pop("__named_schemas", None)
    return schema


def v2_schema(source: Source) -> dict[str, Any]:
    """The source schema as it might evolve: a new optional field with a default."""
    schema = expanded(source)
    schema["fields"] = [*schema["fields"], {"name": "handling_code", "type": ["null", "string"], "default": None}]
    return schema


def next_release_schemas(tmp_path: Path, source: Source) -> Path:
    """A schemas/ folder as the next release would ship it: v2 current, v1 kept in history/."""
    (tmp_path / "history").mkdir()
    for other in Source:
        if other is not source:
            shutil.copy(schema_dir() / f"{other.value}_scan.avsc", tmp_path)
    shutil.copy(schema_dir() / "scan_header.avsc", tmp_path)
    (tmp_path / f"{source.value}_scan.avsc").write_text(json.dumps(v2_schema(source)))
    (tmp_path / "history" / f"{source.value}_scan.v1.avsc").write_text(json.dumps(expanded(source)))
    return tmp_path

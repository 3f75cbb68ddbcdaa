"""Where the repository and its local broker and schema registry scripts are."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
KAFKA_SH = REPO / "infra" / "kafka" / "kafka.sh"
REGISTRY_SH = REPO / "infra" / "schema-registry" / "registry.sh"

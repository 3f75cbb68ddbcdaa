"""The one settings object: the only reader of ``PARCELFLOW_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path


class SettingsError(ValueError):
    """A ``PARCELFLOW_*`` variable has a value the pipeline cannot use."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """Where the broker is, how topics are named, and how a worker runs."""

    bootstrap: str = "127.0.0.1:19092"
    topic_prefix: str = "parcelflow"
    app_id: str = "parcelflow-worker"
    metrics_port: int = 9108
    metrics_host: str = "127.0.0.1"
    partitions: int = 6
    replication: int = 1
    data_dir: Path = Path(".parcelflow")
    namespace: str = "live"
    log_level: str = "info"
    grace_seconds: int = 120
    retention_seconds: int = 6 * 3600
    session_timeout_seconds: int = 10
    targets_dir: Path = Path(".parcelflow/prometheus-targets")
    store: str = "rocksdb://"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``PARCELFLOW_*`` variables, defaults for the rest."""
        env = os.environ if env is None else env
        default = cls()
        return cls(
            bootstrap=env.get("PARCELFLOW_BOOTSTRAP") or default.bootstrap,
            topic_prefix=env.get("PARCELFLOW_TOPIC_PREFIX") or default.topic_prefix,
            app_id=env.get("PARCELFLOW_APP_ID") or default.app_id,
            metrics_port=_int(env, "PARCELFLOW_METRICS_PORT", default.metrics_port),
            metrics_host=env.get("PARCELFLOW_METRICS_HOST") or default.metrics_host,
            partitions=_int(env, "PARCELFLOW_PARTITIONS", default.partitions),
            replication=_int(env, "PARCELFLOW_REPLICATION", default.replication),
            data_dir=Path(env.get("PARCELFLOW_DATA_DIR") or default.data_dir),
            namespace=env.get("PARCELFLOW_NAMESPACE") or default.namespace,
            log_level=env.get("PARCELFLOW_LOG_LEVEL") or default.log_level,
            grace_seconds=_int(env, "PARCELFLOW_GRACE_SECONDS", default.grace_seconds),
            retention_seconds=_int(env, "PARCELFLOW_RETENTION_SECONDS", default.retention_seconds),
            session_timeout_seconds=_int(env, "PARCELFLOW_SESSION_TIMEOUT_SECONDS", default.session_timeout_seconds),
            targets_dir=Path(env.get("PARCELFLOW_TARGETS_DIR") or default.targets_dir),
            store=env.get("PARCELFLOW_STORE") or default.store,
        )

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with the given fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

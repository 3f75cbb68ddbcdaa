"""The one settings object: the only reader of ``PARCELFLOW_*`` environment variables."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

from streams.durations import UNLIMITED, DurationError, parse_retention
from streams.errors import ParcelflowError
from streams.ingest.ahead import MAX_AHEAD_SCANS


class SettingsError(ParcelflowError):
    """A ``PARCELFLOW_*`` variable has a value the pipeline cannot use."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None


def _retention(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse_retention(raw)
    except DurationError as exc:
        raise SettingsError(f"{name}: {exc}") from None


def registry_url(raw: str | None, name: str = "PARCELFLOW_SCHEMA_REGISTRY_URL") -> str | None:
    """A schema registry URL as given (None when empty), without a trailing slash; refused unless http(s)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return raw.rstrip("/")


def bootstrap_servers(raw: str, name: str = "PARCELFLOW_BOOTSTRAP") -> str:
    """Kafka bootstrap servers as given (``host``, ``host:port``, ``[ipv6]:port``, comma-separated).

    Refused when a port is not a number from 0 to 65535: the Kafka client would otherwise fail on
    it later with a bare ``ValueError`` or ``OverflowError`` instead of naming the setting.
    """
    for server in raw.split(","):
        server = server.strip()
        port: str | None = None
        if server.startswith("["):
            _host, bracket, rest = server[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise SettingsError(f"{name}: cannot read server {server!r} (e.g. [::1]:9092)")
            port = rest[1:] if rest else None
        elif ":" in server and not _ipv6_literal(server):
            port = server.rsplit(":", 1)[1]
        if port is not None and not (port.isascii() and port.isdigit() and int(port) <= 65535):
            raise SettingsError(f"{name}: server {server!r} needs a port from 0 to 65535 (e.g. 127.0.0.1:9092)")
    return raw


def _ipv6_literal(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


EVENT_LOOPS = ("asyncio", "uvloop")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env.get(name) or default
    if raw not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _retention_text(retention_ms: int) -> str:
    """``retention.ms`` as PARCELFLOW_SOURCE_RETENTION reads it: ``unlimited`` or whole seconds."""
    if retention_ms == UNLIMITED:
        return "unlimited"
    return f"{retention_ms // 1000}s" if retention_ms % 1000 == 0 else f"{retention_ms}ms"  # the latter is refused


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
    # Time retention (retention.ms) of the source topics that parcelflow creates. Kafka deletes by
    # record timestamp, and ours is the event time: with a finite retention, history older than it
    # (a backlog, last month's file) would be deleted as soon as it arrives. Unlimited by default;
    # an operator who wants a bound sets one (and archives what must outlive it).
    source_retention_ms: int = UNLIMITED
    # How often a worker deletes the by-hub records its group has committed (Kafka Streams purges
    # its repartition topics the same way, every 30 s by default).
    purge_interval_seconds: int = 30
    # A scan stamped further ahead of processing time is dead-lettered (future_event_time): one wrong
    # scanner clock must not move its hub's watermark. One hour, as Kafka's own
    # log.message.timestamp.after.max.ms.
    max_future_seconds: int = 3600
    # Confluent-compatible schema registry (e.g. Apicurio's …/apis/ccompat/v7). When set, everything
    # parcelflow writes uses the Confluent wire format with registered schemas; the worker reads both
    # framings whatever it is set to (a Confluent record needs it to be decoded).
    schema_registry_url: str | None = None
    # The worker's event loop: "asyncio" (the standard library's) or "uvloop" (libuv). Measured
    # with the intake off Faust's per-message path (README, Benchmarks), uvloop was not faster.
    event_loop: str = "asyncio"
    # Parcel scans a worker's intake may have forwarded that the first aggregation stage has not
    # committed; above it the intake waits (streams/ingest/ahead.py). About 3–6 s of work.
    max_ahead_scans: int = MAX_AHEAD_SCANS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``PARCELFLOW_*`` variables, defaults for the rest."""
        env = os.environ if env is None else env
        default = cls()
        return cls(
            bootstrap=bootstrap_servers(env.get("PARCELFLOW_BOOTSTRAP") or default.bootstrap),
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
            source_retention_ms=_retention(env, "PARCELFLOW_SOURCE_RETENTION", default.source_retention_ms),
            purge_interval_seconds=_int(env, "PARCELFLOW_PURGE_INTERVAL_SECONDS", default.purge_interval_seconds),
            max_future_seconds=_int(env, "PARCELFLOW_MAX_FUTURE_SECONDS", default.max_future_seconds),
            schema_registry_url=registry_url(env.get("PARCELFLOW_SCHEMA_REGISTRY_URL")),
            event_loop=_choice(env, "PARCELFLOW_EVENT_LOOP", EVENT_LOOPS, default.event_loop),
            max_ahead_scans=_int(env, "PARCELFLOW_MAX_AHEAD_SCANS", default.max_ahead_scans),
        )

    def to_env(self) -> dict[str, str]:
        """The ``PARCELFLOW_*`` variables that :meth:`from_env` reads back as these settings: a worker's environment.

        Every field is written (a default too, so nothing is inherited from the parent's
        environment); raises SettingsError for a value no variable can express (e.g. an empty
        prefix, which reads back as the default, or a retention that is not whole seconds).
        """
        env = {
            "PARCELFLOW_BOOTSTRAP": self.bootstrap,
            "PARCELFLOW_TOPIC_PREFIX": self.topic_prefix,
            "PARCELFLOW_APP_ID": self.app_id,
            "PARCELFLOW_METRICS_PORT": str(self.metrics_port),
            "PARCELFLOW_METRICS_HOST": self.metrics_host,
            "PARCELFLOW_PARTITIONS": str(self.partitions),
            "PARCELFLOW_REPLICATION": str(self.replication),
            "PARCELFLOW_DATA_DIR": str(self.data_dir),
            "PARCELFLOW_NAMESPACE": self.namespace,
            "PARCELFLOW_LOG_LEVEL": self.log_level,
            "PARCELFLOW_GRACE_SECONDS": str(self.grace_seconds),
            "PARCELFLOW_RETENTION_SECONDS": str(self.retention_seconds),
            "PARCELFLOW_SESSION_TIMEOUT_SECONDS": str(self.session_timeout_seconds),
            "PARCELFLOW_TARGETS_DIR": str(self.targets_dir),
            "PARCELFLOW_STORE": self.store,
            "PARCELFLOW_SOURCE_RETENTION": _retention_text(self.source_retention_ms),
            "PARCELFLOW_PURGE_INTERVAL_SECONDS": str(self.purge_interval_seconds),
            "PARCELFLOW_MAX_FUTURE_SECONDS": str(self.max_future_seconds),
            "PARCELFLOW_SCHEMA_REGISTRY_URL": self.schema_registry_url or "",  # empty: none, even if the parent has one
            "PARCELFLOW_EVENT_LOOP": self.event_loop,
            "PARCELFLOW_MAX_AHEAD_SCANS": str(self.max_ahead_scans),
        }
        back = Settings.from_env(env)
        lost = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(back, f.name) != getattr(self, f.name)
        ]
        if lost:
            raise SettingsError(f"no PARCELFLOW_* value reads back as {', '.join(lost)}")
        return env

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with the given fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

"""The schema registry over HTTP (Confluent-compatible API): register our schemas, fetch writer schemas by id.

The HTTP calls go through confluent-kafka's ``SchemaRegistryClient`` with its own retries turned
off: how long to go on trying is decided here, differently for a command (one clear line and exit
status 1) and for the worker (retry with bounded backoff while ``/ready`` says why).

What the worker does, and why:

- **Unknown id** (the registry answers "schema not found", Confluent error 40403): the record is
  dead-lettered as ``unknown_schema_id``. It is the record's problem — written against another
  registry, or damaged — and waiting would hold its partition forever; the dead letter keeps its
  bytes for whoever sorts it out. The answer is remembered, so a flood of such records costs one
  request.
- **Unreachable registry** (no connection, a timeout, a 5xx, or an answer that is not the
  Confluent API): the batch waits and the fetch is retried with backoff doubling to 30 s, for as
  long as it takes. It is the infrastructure's problem and passes; dead-lettering every record of
  an outage would leave the windows short until someone replayed them. Meanwhile ``/ready`` answers
  503 ``waiting: schema registry …`` (and ``parcelflow_worker_ready`` is 0), a warning is logged at
  each attempt, and nothing after the waiting records is committed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from streams.errors import ParcelflowError
from streams.kafka.codec import Codec, SchemaIds, ThroughputCodec, registry_text
from streams.kafka.topics import Source, Topics
from streams.kafka.wire import backoff_seconds, subject_of
from streams.settings import Settings
from streams.worker.health import Health

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

SCHEMA_NOT_FOUND = 40403
"""Confluent's error code for an id the registry has no schema for (HTTP 404)."""
REFUSED_STATUS = (409, 422)
"""Incompatible with the subject's compatibility rule (409), or not a valid schema (422)."""
TIMEOUT_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 30.0

R = TypeVar("R")
log = logging.getLogger(__name__)


class RegistryError(ParcelflowError):
    """A schema registry problem, said in one line."""


class RegistryUnavailable(RegistryError):
    """The registry cannot be reached, or answers with something other than the Confluent API."""


class SchemaRefused(RegistryError):
    """The registry refused to register a schema (incompatible with the subject's versions, or invalid)."""


_JAVA_EXCEPTION = re.compile(r"^(?:[\w$]+\.)+[\w$]*Exception:\s*")


def _message(text: object, limit: int = 300) -> str:
    """A registry's error message, one line, without a Java exception class in front, cut short."""
    line = " ".join(str(text or "").split())
    line = _JAVA_EXCEPTION.sub("", line)
    return line if len(line) <= limit else line[: limit - 1] + "…"


class SchemaRegistry:
    """Blocking calls to one registry (run them in a thread from async code)."""

    def __init__(self, url: str, timeout: float = TIMEOUT_SECONDS) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self.url = url
        self._client: SchemaRegistryClient = SchemaRegistryClient({"url": url, "max.retries": 0, "timeout": timeout})

    def register(self, subject: str, text: str) -> int:
        """Register Avro ``text`` under ``subject`` (the same text again returns its id); raises RegistryError."""
        from confluent_kafka.schema_registry import Schema
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            return int(self._client.register_schema(subject, Schema(text, "AVRO")))
        except SchemaRegistryError as exc:
            if exc.http_status_code in REFUSED_STATUS:
                raise SchemaRefused(
                    f"the schema registry at {self.url} refused the schema for subject {subject}: "
                    f"{_message(exc.error_message)}"
                ) from None
            raise self._unavailable(exc, f"registering under {subject}") from None
        except Exception as exc:  # noqa: BLE001 - httpx transport errors, timeouts, bad JSON: one line
            raise self._unreachable(exc) from None

    def schema(self, schema_id: int) -> tuple[str, str] | None:
        """(schema text, schema type) of ``schema_id``, or None when the registry has no such id."""
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            found = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            status = exc.http_status_code
            if status == 404 and exc.error_code == SCHEMA_NOT_FOUND:
                return None
            if status in (401, 403) or status >= 500 or status == 404:  # the registry's problem, or ours: wait
                raise self._unavailable(exc, f"fetching schema id {schema_id}") from None
            # Any other 4xx is an answer about this id (the record's problem): its records are
            # dead-lettered rather than holding the partition forever.
            log.warning(
                "the schema registry answered HTTP %d for schema id %d (%s): taken as unknown",
                status,
                schema_id,
                _message(exc.error_message),
            )
            return None
        except Exception as exc:  # noqa: BLE001 - httpx transport errors, timeouts, bad JSON: one line
            raise self._unreachable(exc) from None
        return str(found.schema_str), str(found.schema_type or "AVRO")

    def _unavailable(self, exc: Any, doing: str) -> RegistryUnavailable:
        hint = ""
        if exc.http_status_code == 404:  # a 404 without Confluent's error code: not the Confluent API
            hint = " (is this the Confluent-compatible API, e.g. Apicurio's …/apis/ccompat/v7?)"
        return RegistryUnavailable(
            f"the schema registry at {self.url} answered HTTP {exc.http_status_code} {doing}: "
            f"{_message(exc.error_message)}{hint}"
        )

    def _unreachable(self, exc: Exception) -> RegistryUnavailable:
        return RegistryUnavailable(f"cannot reach the schema registry at {self.url}: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()


class Registry(Protocol):
    """What the worker needs of a registry (a fake in unit tests)."""

    url: str

    def register(self, subject: str, text: str) -> int:
        """Register a schema, return its id."""

    def schema(self, schema_id: int) -> tuple[str, str] | None:
        """Schema text and type of an id, None if unknown."""


def register_sources(registry: Registry, codec: Codec, topics: Topics) -> dict[Source, int]:
    """Register the current schema of each source under its topic's subject; the ids to write with."""
    return {
        source: registry.register(subject_of(topics.source(source)), registry_text(codec.readers[source]))
        for source in Source
    }


def confluent_codec(settings: Settings, topic_prefix: str | None = None, codec: Codec | None = None) -> Codec:
    """A codec that writes what ``settings`` ask for: Confluent framing with registered ids when a registry is set."""
    codec = codec or Codec()
    if settings.schema_registry_url is not None:
        registry = SchemaRegistry(settings.schema_registry_url)
        try:
            codec.write_schema_ids(register_sources(registry, codec, Topics(topic_prefix or settings.topic_prefix)))
        finally:
            registry.close()
    return codec


class WriterSchemas:
    """Schemas the worker needs from the registry: writers named by id (once each), its output schema (once).

    Fetches run in a thread, never on the event loop; while the registry cannot be reached they
    are retried with bounded backoff and ``health`` says why the worker waits.
    """

    def __init__(
        self,
        registry: Registry | None,
        health: Health,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_backoff: float = MAX_BACKOFF_SECONDS,
        attempts: int | None = None,
    ) -> None:
        self.registry = registry
        self.health = health
        self._sleep = sleep
        self._max_backoff = max_backoff
        self._attempts = attempts  # None: until it answers (the worker); a number: then raise (a command)
        self._framed: set[int] = set()  # output codecs already writing with a registered id

    @classmethod
    def from_settings(cls, settings: Settings, health: Health, attempts: int | None = None) -> WriterSchemas:
        """With the settings' registry, or none (then Confluent-framed records are rejected as undecodable)."""
        url = settings.schema_registry_url
        return cls(SchemaRegistry(url) if url is not None else None, health, attempts=attempts)

    async def prepare(self, ids: SchemaIds[Any], values: Iterable[bytes | None]) -> None:
        """Make every schema id that ``values`` name known to ``ids``; returns at once when all are."""
        if self.registry is None:
            return
        registry = self.registry
        for schema_id in sorted(ids.unknown(values)):
            found = await self._retrying(
                f"fetching schema id {schema_id}", functools.partial(registry.schema, schema_id)
            )
            if found is None:
                log.warning("the schema registry has no schema id %d: its records are dead-lettered", schema_id)
                ids.learn(schema_id, None)
            else:
                ids.learn(schema_id, *found)

    async def frame_output(self, codec: ThroughputCodec, topic: str) -> None:
        """Have ``codec`` write the Confluent framing, its schema registered under ``topic``'s subject (once)."""
        if self.registry is None or id(codec) in self._framed:
            return
        registry, subject = self.registry, subject_of(topic)
        schema_id = await self._retrying(
            f"registering {subject}", lambda: registry.register(subject, registry_text(codec.schema))
        )
        codec.write_schema_id(schema_id)
        self._framed.add(id(codec))

    async def _retrying(self, what: str, call: Callable[[], R]) -> R:
        """``call()`` in a thread until it stops raising RegistryUnavailable (SchemaRefused goes up)."""
        attempt = 0
        while True:
            try:
                result = await asyncio.to_thread(call)
            except RegistryUnavailable as exc:
                attempt += 1
                if self._attempts is not None and attempt >= self._attempts:
                    raise
                delay = backoff_seconds(attempt, cap=self._max_backoff)
                self.health.wait(f"schema registry: {exc}; retrying {what} in {delay:.0f} s (attempt {attempt})")
                log.warning("%s; retrying %s in %.1f s (attempt %d)", exc, what, delay, attempt)
                await self._sleep(delay)
                continue
            if attempt:
                log.warning("the schema registry answered again after %d attempts (%s)", attempt + 1, what)
                self.health.resume()
            return result

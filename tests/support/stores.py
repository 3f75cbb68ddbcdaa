"""A state store on a dict: what the aggregation's pure tests give it in place of a Faust table."""

from __future__ import annotations

from collections.abc import Iterable


class DictStore:
    """``StateStore`` on a dict; ``writes`` keeps every put and delete (``None``) in order."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.writes: list[tuple[bytes, bytes | None]] = []

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.data[key] = value
        self.writes.append((key, value))

    def delete(self, key: bytes) -> None:
        self.data.pop(key, None)
        self.writes.append((key, None))

    def keys(self, prefix: bytes = b"") -> Iterable[bytes]:
        return [k for k in self.data if k.startswith(prefix)]

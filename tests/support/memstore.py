"""An in-memory stand-in for a partition's state, for fold, retention and query tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping


class MemState:
    """A dict-backed bytes → bytes state with the transaction's get/set/delete/scan."""

    def __init__(self, data: Mapping[bytes, bytes] | None = None) -> None:
        self.data: dict[bytes, bytes] = dict(data or {})
        self.aside: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = []

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        assert isinstance(key, bytes) and isinstance(value, bytes)
        self.data[key] = value

    def delete(self, key: bytes) -> None:
        self.data.pop(key, None)

    def scan(self, low: bytes, high: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) with low <= key < high, in key order (a snapshot)."""
        return iter([(k, self.data[k]) for k in sorted(k for k in self.data if low <= k < high)])

    def last(self, low: bytes, high: bytes) -> bytes | None:
        """The greatest key with low <= key < high, or None."""
        return max((k for k in self.data if low <= k < high), default=None)

    def send_aside(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        self.aside.append((topic, key, value, headers))

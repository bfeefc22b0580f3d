"""In-memory stand-ins for a table partition's key-value store, for applier and query tests."""

from __future__ import annotations

from collections.abc import Mapping


class MemStore:
    """A dict-backed bytes → bytes store with the applier's KeyValueStore interface."""

    def __init__(self, data: Mapping[bytes, bytes] | None = None) -> None:
        self.data: dict[bytes, bytes] = dict(data or {})

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        assert isinstance(key, bytes) and isinstance(value, bytes)
        self.data[key] = value

    def delete(self, key: bytes) -> None:
        self.data.pop(key, None)


class Crash(Exception):
    """The simulated process death of a FailingStore."""


class WriteBudget:
    """How many writes the stores sharing it may still make before they 'crash'."""

    def __init__(self, writes_left: int | None) -> None:
        self.writes_left = writes_left
        self.writes_done = 0

    def spend(self) -> None:
        if self.writes_left is not None:
            if self.writes_left <= 0:
                raise Crash(f"crash after {self.writes_done} writes")
            self.writes_left -= 1
        self.writes_done += 1


class FailingStore:
    """Wraps a MemStore; raises Crash on the write that exceeds the shared budget (unwritten)."""

    def __init__(self, inner: MemStore, budget: WriteBudget) -> None:
        self.inner = inner
        self.budget = budget

    def get(self, key: bytes) -> bytes | None:
        return self.inner.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self.budget.spend()
        self.inner.set(key, value)

    def delete(self, key: bytes) -> None:
        self.budget.spend()
        self.inner.delete(key)

"""The local RocksDB copy of one partition's state; the only module that opens a database.

The copy is always a prefix of the partition's changelog: every change reaches it in one
atomic write batch together with the changelog offset it brings the copy to (the checkpoint),
and only after that change is committed in Kafka. A copy can therefore be behind its
changelog (recovery reads the rest) but never ahead of it.
"""

from __future__ import annotations

import functools
import logging
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from rocksdict import BlockBasedOptions, Cache, Options, Rdict, ReadOptions, WriteBatch

from streamagg.errors import StateError
from streamagg.tables.keys import (
    FORMAT_VERSION,
    LOCAL_CHECKPOINT,
    LOCAL_FORMAT,
    READABLE_FORMATS,
    decode_int,
    encode_int,
)

log = logging.getLogger(__name__)


# Sizes measured with `python -m bench.store_options` (BENCHMARKS.md): every partition of a process
# shares one block cache; each partition has up to two memtables of MEMTABLE_BYTES.
BLOCK_CACHE_BYTES = 256 * 1024 * 1024
MEMTABLE_BYTES = 32 * 1024 * 1024
# Report groups and partition metadata are read again and again (the current hour's, day's
# and month's groups); call ids almost never. A lookup of a key RocksDB holds costs ~4 us
# through rocksdict, a dict lookup ~0.1: each store keeps its hot keys' values in memory,
# emptied whenever it passes this many keys (~200 bytes each).
HOT_KEYS = 100_000
_HOT_KINDS = (ord("R"), ord("M"), ord("C"))


@functools.cache
def _block_cache() -> Cache:
    """The one block cache of every partition this process opens."""
    return Cache(BLOCK_CACHE_BYTES)


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(MEMTABLE_BYTES)
    # Most keys looked up are new (call ids, a new hour's groups): bloom filters answer those
    # misses without a search, in the memtable (its skip list is the costliest part of a
    # lookup) as in every table file.
    options.set_memtable_prefix_bloom_ratio(0.1)
    options.set_memtable_whole_key_filtering(True)
    table = BlockBasedOptions()
    table.set_bloom_filter(10, False)
    table.set_block_cache(_block_cache())
    options.set_block_based_table_factory(table)
    return options


class PartitionStore:
    """One partition's RocksDB: point reads, key-range scans, atomic checkpointed writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = self._open()
        # Values of hot keys exactly as in the database: filled by reads and by apply() after
        # its write succeeded, so it never holds anything the database does not.
        self._hot: dict[bytes, bytes | None] = {}

    def _open(self) -> Rdict:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = Rdict(str(self.path), options=_options())
        except Exception as exc:  # rocksdict raises plain Exceptions (e.g. the folder's LOCK)
            raise StateError(f"cannot open the state folder {self.path}: {exc}") from None
        found = db.get(LOCAL_FORMAT)
        if found is None:
            db.put(LOCAL_FORMAT, encode_int(FORMAT_VERSION))
        elif int(found) in READABLE_FORMATS and int(found) != FORMAT_VERSION:
            db.put(LOCAL_FORMAT, encode_int(FORMAT_VERSION))  # (older values read as they are)
        elif int(found) != FORMAT_VERSION:
            db.close()
            raise StateError(
                f"the state folder {self.path} holds format {int(found)}; this streamagg "
                f"reads format {FORMAT_VERSION} (remove the folder to rebuild it from Kafka)"
            )
        return db

    @property
    def checkpoint(self) -> int:
        """The next changelog offset this copy has not applied yet."""
        return decode_int(self._db.get(LOCAL_CHECKPOINT), 0)

    def get(self, key: bytes) -> bytes | None:
        hot = self._hot
        if key in hot:
            return hot[key]
        value: bytes | None = self._db.get(key)
        if key and key[0] in _HOT_KINDS:
            if len(hot) >= HOT_KEYS:
                hot.clear()
            hot[key] = value
        return value

    def scan(self, low: bytes, high: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) with low <= key < high, in key order."""
        # (a generator on purpose: it keeps ``bound`` alive while rocksdict's iterator runs;
        # returning that iterator alone lets the upper bound be freed, and the scan runs on)
        bound = ReadOptions()
        bound.set_iterate_upper_bound(high)
        yield from self._db.items(from_key=low, read_opt=bound)

    def last(self, low: bytes, high: bytes) -> bytes | None:
        """The greatest key with low <= key < high, or None."""
        bound = ReadOptions()
        bound.set_iterate_upper_bound(high)
        cursor = self._db.iter(bound)
        cursor.seek_to_last()
        if not cursor.valid():
            return None
        key: bytes = cursor.key()
        return key if key >= low else None

    def apply(self, writes: Mapping[bytes, bytes | None], checkpoint: int) -> None:
        """Write every change (None deletes) and the new checkpoint, all or nothing."""
        batch = WriteBatch(raw_mode=True)
        for key, value in writes.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(LOCAL_CHECKPOINT, encode_int(checkpoint))
        self._db.write(batch)
        hot = self._hot
        if len(hot) + len(writes) > HOT_KEYS:
            hot.clear()
        for key, value in writes.items():
            if key and key[0] in _HOT_KINDS:
                hot[key] = value

    def wipe(self) -> None:
        """Forget everything (the changelog is rebuilt into an empty copy)."""
        log.warning("state copy %s discarded; rebuilding it from the changelog", self.path)
        self._hot.clear()
        self._db.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self._db = self._open()

    def close(self) -> None:
        self._db.close()

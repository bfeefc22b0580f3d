"""`python -m bench.store_options`: RocksDB options for the state's access pattern, side by side.

1,500,000 random call-id keys (the dedup entries' shape): for each, a get (almost always a
miss) and a put, in write batches of 20,000 — then 200,000 gets of keys that exist. Prints the
wall time per key for each variant of the options; streamagg/tables/store.py uses the last.
"""

from __future__ import annotations

import random
import tempfile
import time

from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch

KEYS = 1_500_000
CHUNK = 20_000
MIB = 1024 * 1024


def options(memtable_bloom: bool, block_cache: bool, memtable_mib: int) -> Options:
    opts = Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.set_write_buffer_size(memtable_mib * MIB)
    if memtable_bloom:
        opts.set_memtable_prefix_bloom_ratio(0.1)
        opts.set_memtable_whole_key_filtering(True)
    table = BlockBasedOptions()
    table.set_bloom_filter(10, False)
    if block_cache:
        table.set_block_cache(Cache(256 * MIB))
    opts.set_block_based_table_factory(table)
    return opts


def measure(opts: Options, keys: list[bytes]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        db = Rdict(folder, options=opts)
        began = time.perf_counter()
        for first in range(0, len(keys), CHUNK):
            chunk = keys[first : first + CHUNK]
            for key in chunk:
                db.get(key)
            batch = WriteBatch(raw_mode=True)
            for key in chunk:
                batch.put(key, b"1795613400123,1795613400")
            db.write(batch)
        write = (time.perf_counter() - began) / len(keys)
        began = time.perf_counter()
        for key in keys[:200_000]:
            db.get(key)
        read = (time.perf_counter() - began) / 200_000
        db.close()
    return write, read


def main() -> None:
    rng = random.Random(1)
    keys = [
        f"D\x1f{1000 + i % 40}\x1f{rng.getrandbits(64):016x}-{i:x}".encode() for i in range(KEYS)
    ]
    variants = [
        ("bloom filters in table files only, 64 MiB memtables", (False, False, 64)),
        ("+ the memtable's whole-key bloom filter", (True, False, 64)),
        ("+ a 256 MiB block cache", (True, True, 64)),
        ("+ 16 MiB memtables", (True, True, 16)),
        ("+ 32 MiB memtables (streamagg's choice)", (True, True, 32)),
    ]
    print("| options | get + put, µs per key | get of a present key, µs |\n|---|---:|---:|")
    for label, args in variants:
        write, read = measure(options(*args), keys)
        print(f"| {label} | {write * 1e6:.1f} | {read * 1e6:.1f} |", flush=True)


if __name__ == "__main__":
    main()

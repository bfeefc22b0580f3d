"""The local RocksDB copy (tables/store.py): its in-memory values of hot keys never differ from
the database, whatever sequence of reads, writes, deletes, failed writes and wipes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rocksdict import Options, Rdict

from streamagg.errors import StateError
from streamagg.tables import store as store_module
from streamagg.tables.keys import LOCAL_FORMAT
from streamagg.tables.store import PartitionStore

KEYS = [b"R\x1fdtmf\x1fd00020000\x1f42\x1f1", b"R\x1frate-center\x1fh1\x1f7\x1f212555", b"M\x1fx"]
KEYS += [b"D\x1f42\x1fcall-1", b"X\x1f0000000000001\x1f42\x1fcall-1"]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("get"), st.sampled_from(KEYS)),
        st.tuples(
            st.just("apply"),
            st.dictionaries(
                st.sampled_from(KEYS), st.none() | st.binary(min_size=1, max_size=8), max_size=4
            ),
        ),
        st.tuples(st.just("wipe"), st.none()),
    ),
    max_size=40,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations, hot_keys=st.sampled_from([1, 2, 100_000]))
def test_reads_always_return_what_the_database_holds(
    tmp_path_factory: pytest.TempPathFactory,
    ops: list,
    hot_keys: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store_module, "HOT_KEYS", hot_keys)  # (1 and 2: emptied all the time)
    store = PartitionStore(tmp_path_factory.mktemp("store") / "p")
    truth: dict[bytes, bytes] = {}
    try:
        for checkpoint, (op, arg) in enumerate(ops):
            if op == "get":
                assert store.get(arg) == truth.get(arg)
            elif op == "apply":
                store.apply(arg, checkpoint)
                for key, value in arg.items():
                    if value is None:
                        truth.pop(key, None)
                    else:
                        truth[key] = value
            else:
                store.wipe()
                truth.clear()
            for key in KEYS:  # (which also makes every key hot before the next operation)
                assert store.get(key) == truth.get(key), (op, arg)
        for key in KEYS:
            assert store.get(key) == truth.get(key)
            assert store._db.get(key) == truth.get(key)  # the database itself, not the cache
    finally:
        store.close()


def test_a_failed_write_leaves_no_value_in_memory(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p")
    key = KEYS[0]
    store.apply({key: b"1"}, 1)
    assert store.get(key) == b"1"

    class Failing:
        def write(self, batch: object) -> None:
            raise OSError("disk full")

    real = store._db
    store._db = Failing()  # type: ignore[assignment]
    with pytest.raises(OSError):
        store.apply({key: b"2"}, 2)
    store._db = real
    assert store.get(key) == b"1"
    store.close()


@pytest.mark.parametrize("older", [b"1", b"2"])
def test_a_folder_of_an_older_format_is_read_and_marked_current(
    tmp_path: Path, older: bytes
) -> None:
    """Formats 2 and 3 changed hour, day and month values, which read older ones: no rebuild."""
    old = Rdict(str(tmp_path / "p"), options=Options(raw_mode=True))
    old.put(LOCAL_FORMAT, older)
    old.put(b"R\x1fx", b"1,2")
    old.close()
    store = PartitionStore(tmp_path / "p")
    assert store.get(b"R\x1fx") == b"1,2"
    store.close()
    reopened = Rdict(str(tmp_path / "p"), options=Options(raw_mode=True))
    assert reopened.get(LOCAL_FORMAT) == b"3"
    reopened.close()


def test_a_folder_of_a_newer_format_is_refused(tmp_path: Path) -> None:
    newer = Rdict(str(tmp_path / "p"), options=Options(raw_mode=True))
    newer.put(LOCAL_FORMAT, b"4")
    newer.close()
    with pytest.raises(StateError, match="holds format 4; this streamagg reads format 3"):
        PartitionStore(tmp_path / "p")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    keys=st.sets(st.binary(min_size=1, max_size=3), max_size=12),
    low=st.binary(max_size=2),
    high=st.binary(min_size=1, max_size=3),
)
def test_last_is_the_greatest_key_of_a_range(
    tmp_path: Path, keys: set[bytes], low: bytes, high: bytes
) -> None:
    store = PartitionStore(tmp_path / f"last-{abs(hash((frozenset(keys), low, high)))}")
    store.apply(dict.fromkeys(keys, b"v"), 0)
    # (the store's own bookkeeping keys start with 0x00)
    held = [k for k in keys | {b"\x00checkpoint", b"\x00format"} if low <= k < high]
    assert store.last(low, high) == max(held, default=None)
    store.close()

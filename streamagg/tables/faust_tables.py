"""The Faust tables behind the reports: declared once, seen per partition as byte stores."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import TP

from streamagg.reports import REPORTS
from streamagg.tables.applier import PartitionStores


class TableStore:
    """One partition of a Faust table as bytes in, bytes out.

    Reads go straight to that partition's RocksDB (no serializer round trip); writes go to the
    same database and to the changelog through the batch's ChangelogWriter.
    """

    def __init__(self, table: Any, partition: int, writer: Any) -> None:
        self.table = table
        self.partition = partition
        self.db = partition_db(table, partition)
        self.writer = writer

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.db.get(key)
        return value

    def set(self, key: bytes, value: bytes) -> None:
        self.writer.put(self.table, self.partition, key, value)

    def delete(self, key: bytes) -> None:
        self.writer.put(self.table, self.partition, key, None)


def partition_db(table: Any, partition: int) -> Any:
    """The rocksdict database of one table partition (Faust's RocksDB store keeps one each)."""
    return table.data._db_for_partition(partition)


@dataclass
class ReportTables:
    progress: Any
    dedup: Any
    reports: dict[str, Any]

    def all(self) -> Iterator[Any]:
        yield self.progress
        yield self.dedup
        yield from self.reports.values()

    def stores_for(self, partition: int, writer: Any) -> PartitionStores:
        return PartitionStores(
            progress=TableStore(self.progress, partition, writer),
            dedup=TableStore(self.dedup, partition, writer),
            reports={name: TableStore(t, partition, writer) for name, t in self.reports.items()},
        )

    def changelog_tp(self, partition: int) -> TP:
        return TP(self.progress.changelog_topic.get_topic_name(), partition)


def declare_tables(app: faust.App, partitions: int) -> ReportTables:
    """Plain keyed tables (not windowed): keys are (customer, bucket) and retention is ours."""

    def table(name: str) -> Any:
        return app.Table(
            name,
            partitions=partitions,
            key_type=bytes,
            value_type=bytes,
            help=f"streamagg {name}",
        )

    return ReportTables(
        progress=table("progress"),
        dedup=table("dedup"),
        reports={name: table(f"report-{name}") for name in REPORTS},
    )

"""The ingest stage's batch messages (agents/ingest.py _encode_bounded): each fits the broker's
limit, and together they hold every record once, in order."""

from __future__ import annotations

import pytest

from streamagg.agents.ingest import _encode_bounded
from streamagg.batches import Batch, Record
from streamagg.cdr import Cdr
from streamagg.kafka_clients import MAX_BATCH_BYTES

T0 = 1_795_608_000


def calls(count: int, callid_chars: int, hours: int) -> list[Record]:
    return [
        Record(
            n,
            T0 * 1000 + n,
            Cdr(
                f"{n:08d}".ljust(callid_chars, "x"),
                str(n % 7),
                T0 + (n % hours) * 3600,
                str(n % 5),
                n * 1000,
                n * 500,
                f"{n % 3}#",
                n * 1_000_000,
                n % 2 == 0,
                n % 9 == 0,
                f"212{n % 1000:03d}{n % 10_000:04d}",
                f"646555{n % 10_000:04d}",
                "7" if n % 4 == 0 else "",
            ),
        )
        for n in range(count)
    ]


@pytest.mark.parametrize(
    ("count", "callid_chars", "hours"),
    [(1, 10, 1), (3000, 20, 24), (4000, 250, 24 * 40), (12_000, 10, 5)],
)
def test_messages_fit_and_hold_every_record_once_in_order(
    count: int, callid_chars: int, hours: int
) -> None:
    records = calls(count, callid_chars, hours)
    payloads = _encode_bounded(Batch("cdr-events/0", records))
    decoded = [Batch.decode(payload) for payload in payloads]
    assert all(len(payload) <= MAX_BATCH_BYTES for payload in payloads)
    assert [r for batch in decoded for r in batch.records] == records
    if callid_chars == 250:  # ~1.4 MB of records: split
        assert len(payloads) > 1

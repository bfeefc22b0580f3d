"""Hostile input through the whole ingest stage and the real broker (issue 14).

A corpus of payloads that broke or could break decoders — deep nesting beside an exact amount,
huge numbers, Unicode digits, control characters, BOMs, duplicate keys, invalid UTF-8, sizes of
64 KiB ± 1 — and Hypothesis' own byte strings and JSON objects of CDR fields go in; then one
ordinary CDR. Every message must end accepted, duplicate or in the DLQ byte for byte (as the
independent oracle decides), the counters must add up, and the stage must still be running.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import ADMIN_TOKEN
from tests.e2e.test_metrics import samples
from tests.support.kafka_io import consume_all, header, produce
from tests.support.oracle import ReportOracle
from tests.support.worker import WorkerProcess, free_port, wait_for, worker_env

pytestmark = pytest.mark.timeout(300)

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
DT = int((NOW - timedelta(hours=2)).timestamp())
BASE = {"callid": "base", "dt": DT, "customer_id": "7"}


def with_fields(**fields: object) -> bytes:
    return orjson.dumps({**BASE, **fields})


def sized(size: int) -> bytes:
    head = b'{"callid": "big", "dt": %d, "customer_id": "7", "pad": "' % DT
    return head + b"x" * (size - len(head) - 2) + b'"}'


CORPUS: list[bytes] = [
    b'{"callid": "deep", "dt": %d, "customer_id": "7", "customer_charge": 1.1234567, "x": %s}'
    % (DT, b"[" * 1_000 + b"]" * 1_000),
    b'{"callid": "deeper", "dt": %d, "customer_id": "7", "x": %s}'
    % (DT, b"{" * 3_000 + b"}" * 3_000),
    b'{"callid": "huge", "dt": %d, "customer_id": "7", "customer_charge": 1%s}' % (DT, b"0" * 400),
    b'{"callid": "huge-id", "dt": %d, "customer_id": 1%s}' % (DT, b"0" * 200),
    b'{"callid": "tiny", "dt": %d, "customer_id": "7", "duration": 1e-400}' % DT,
    b'{"callid": "exp", "dt": 1e400, "customer_id": "7"}',
    b'{"callid": "unknown-exp", "dt": %d, "customer_id": "7", "x": -1e400}' % DT,
    b'{"callid": "unknown-int", "dt": %d, "customer_id": "7", "x": 1%s}' % (DT, b"0" * 5_000),
    b'{"callid": "dt-rounds-up", "dt": %d.9999999, "customer_id": "7"}' % (DT + 3599),
    with_fields(callid="arabic", customer_charge="١٢٣"),
    with_fields(callid="ctl\u0000", tech_prefix="9#"),
    with_fields(callid="ctl-prefix", tech_prefix="9\n#"),
    with_fields(callid="c1", customer_id="7\u0085"),
    b"\xef\xbb\xbf" + with_fields(callid="bom"),
    b'{"callid": "dup-key", "callid": "dup-key-2", "dt": %d, "customer_id": "7"}' % DT,
    b'{"callid": "bad-utf8-\xff", "dt": %d, "customer_id": "7"}' % DT,
    b'{"callid": "surrogate-\\ud800", "dt": %d, "customer_id": "7"}' % DT,
    b"\x00" * 32,
    b"null",
    b'"just a string"',
    b"[]",
    b"{}",
    b"",
    sized(64 * 1024 - 1),
    sized(64 * 1024),
    sized(64 * 1024 + 1),
    with_fields(callid="ok-1", customer_charge="12.5", tech_prefix="9#"),
    with_fields(callid="ok-1", customer_charge="12.5", tech_prefix="9#"),  # a duplicate
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
cdr_like = st.fixed_dictionaries(
    {"callid": st.text(min_size=1, max_size=12) | json_values},
    optional={
        "dt": st.integers(DT - 3600, DT + 3600) | json_values,
        "customer_id": st.sampled_from(["7", "8", 7]) | json_values,
        "customer_charge": st.decimals(allow_nan=True).map(str) | json_values,
        "tech_prefix": st.text(max_size=34) | json_values,
        "duration": st.floats() | json_values,
        "sip_code": st.integers(0, 1000) | json_values,
    },
).map(lambda d: orjson.dumps(d, option=orjson.OPT_NON_STR_KEYS))
payloads = st.lists(st.binary(max_size=300) | cdr_like, min_size=150, max_size=150)


@settings(
    max_examples=1,
    phases=[Phase.generate],  # one batch against one worker; no shrinking on it
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(generated=payloads)
async def test_every_hostile_message_is_accepted_duplicate_or_dead_lettered_and_the_stage_goes_on(
    kafka_bootstrap: str, tmp_path: Path, tokens_file: Path, generated: list[bytes]
) -> None:
    # A worker of its own for each run of the body (Hypothesis runs a failing one again).
    name = f"hostile-{uuid.uuid4().hex[:10]}"
    data_dir = tmp_path / name / "data"
    data_dir.mkdir(parents=True)
    env = worker_env(kafka_bootstrap, name, data_dir, free_port(), tokens_file)
    worker = WorkerProcess(env, data_dir, int(env["STREAMAGG_WEB_PORT"]), tmp_path / f"{name}.log")
    worker.start()
    try:
        await check_hostile_batch(worker, kafka_bootstrap, CORPUS + generated)
    finally:
        worker.stop()


async def check_hostile_batch(
    worker: WorkerProcess, kafka_bootstrap: str, messages: list[bytes]
) -> None:
    worker.wait_ready()
    sentinel = with_fields(callid="sentinel", customer_id="sentinel-customer")
    await produce(kafka_bootstrap, worker.env["STREAMAGG_TOPIC"], [*messages, sentinel])
    oracle = ReportOracle([*messages, sentinel], did_owner={})
    rejected = oracle.rejected()

    def counted() -> float:
        metrics = samples(worker.get("/metrics").text)["streamagg_cdrs_total"]
        return sum(metrics.values())

    wait_for(lambda: counted() >= len(messages) + 1, 120, "every message counted")
    dead = await consume_all(
        kafka_bootstrap, worker.env["STREAMAGG_DLQ_TOPIC"], expected=len(rejected), timeout=60
    )
    got, expected = Counter(r.value for r in dead), Counter(rejected)
    only_dlq = [(r.value[:80], header(r, "error")) for r in dead if r.value in got - expected]
    assert got == expected, (
        f"only in the DLQ: {only_dlq}; "
        f"rejected by the oracle, not in the DLQ: {[v[:80] for v in expected - got]}"
    )
    metrics = samples(worker.get("/metrics").text)["streamagg_cdrs_total"]
    outcome = {dict(k)["outcome"]: v for k, v in metrics.items()}
    assert outcome["rejected"] == len(rejected)
    assert outcome["accepted"] == oracle.accepted_count()
    assert outcome["duplicate"] == oracle.duplicate_count()
    assert sum(outcome.values()) == len(messages) + 1
    assert worker.get("/readyz").status_code == 200
    sentinel_rows = worker.get(
        "/api/v1/customers/sentinel-customer/reports/tech-prefix",
        ADMIN_TOKEN,
        **{"from": (NOW - timedelta(days=1)).isoformat(), "to": NOW.isoformat()},
    )
    assert sentinel_rows.status_code == 200
    assert [r["total"] for r in sentinel_rows.json()["rows"]] == [1]

"""Operator mistakes at a worker's start, through real worker processes and the real broker:
one line naming the setting and exit code 2, never a worker that joins its group only to hold
partitions it cannot open while another says it is ready."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.timeout(180)


def exit_code(worker: WorkerProcess) -> int | None:
    assert worker.process is not None
    return worker.process.poll()


# (A second worker of the app on the same STREAMAGG_DATA_DIR joined the group, failed to open
# the first one's RocksDB copies, and held its partitions for good: the first stayed ready and
# answered 503 for their customers. A taken port was a traceback from deep in the start-up.)
@pytest.mark.parametrize(
    ("shared", "said"),
    [
        ("STREAMAGG_DATA_DIR", "streamagg: STREAMAGG_DATA_DIR={}: the state folder"),
        ("STREAMAGG_WEB_PORT", "streamagg: STREAMAGG_WEB_PORT={}: cannot listen on"),
    ],
)
def test_a_second_worker_sharing_the_first_ones_folder_or_port_stops_in_one_line(
    worker_factory: Callable[..., WorkerProcess], shared: str, said: str
) -> None:
    first = worker_factory()
    first.wait_ready()
    value = str(first.data_dir) if shared == "STREAMAGG_DATA_DIR" else str(first.port)
    second = worker_factory(**{shared: value})
    wait_for(lambda: exit_code(second) is not None, 60, "the second worker to stop")
    assert exit_code(second) == 2
    output = second.tail(200)
    assert said.format(value) in output and "Traceback" not in output
    assert first.get("/readyz").status_code == 200

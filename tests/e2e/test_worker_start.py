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


def test_a_second_worker_on_the_first_ones_state_folder_is_refused_and_the_first_answers(
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    """(A second worker of the app on the same STREAMAGG_DATA_DIR joined the group, failed to
    open the first one's RocksDB copies, and held its partitions for good: the first stayed
    ready and answered 503 for their customers.)"""
    first = worker_factory()
    first.wait_ready()
    second = worker_factory(STREAMAGG_DATA_DIR=str(first.data_dir))
    wait_for(lambda: exit_code(second) is not None, 60, "the second worker to stop")
    assert exit_code(second) == 2
    said = second.tail(200)
    assert f"streamagg: STREAMAGG_DATA_DIR={first.data_dir}: the state folder" in said
    assert "in use by another worker of" in said and "Traceback" not in said
    assert first.get("/readyz").status_code == 200


def test_a_taken_http_port_is_one_line_before_anything_starts(
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    first = worker_factory()
    first.wait_ready()
    second = worker_factory(STREAMAGG_WEB_PORT=str(first.port))
    wait_for(lambda: exit_code(second) is not None, 60, "the second worker to stop")
    assert exit_code(second) == 2
    said = second.tail(200)
    assert f"streamagg: STREAMAGG_WEB_PORT={first.port}: cannot listen on" in said
    assert "Traceback" not in said

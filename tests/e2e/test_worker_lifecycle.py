"""A worker starts, joins its consumer groups, and answers health, readiness and metrics."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.support.chaos import alive, descendants, kill_pids
from tests.support.worker import WorkerProcess, http_get


def test_worker_becomes_ready_and_serves_health(worker_factory) -> None:  # type: ignore[no-untyped-def]
    worker: WorkerProcess = worker_factory()
    worker.wait_ready()

    assert worker.get("/healthz").json() == {"status": "ok"}
    ready = worker.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    metrics = worker.get("/metrics").text
    assert 'streamagg_cdrs_total{outcome="accepted"} 0.0' in metrics
    assert 'streamagg_state_transactions_total{outcome="failed"} 0.0' in metrics


def test_table_dump_pages_are_off(worker_factory) -> None:  # type: ignore[no-untyped-def]
    worker: WorkerProcess = worker_factory()
    worker.wait_ready()
    for path in ("/table/", "/router/", "/graph/"):
        response = http_get(worker.base_url + path, timeout=10)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


def test_worker_waits_for_an_unreachable_broker_without_a_traceback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.support.worker import free_port, worker_env

    dead = f"127.0.0.1:{free_port()}"
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    worker = WorkerProcess(
        worker_env(dead, "unreachable", data_dir, free_port()), data_dir, 0, tmp_path / "w.log"
    ).start()
    try:
        deadline_log = ""
        for _ in range(60):
            deadline_log = worker.tail()
            if "retrying" in deadline_log:
                break
            import time

            time.sleep(0.5)
        assert worker.process is not None and worker.process.poll() is None, "worker died"
        assert f"cannot reach Kafka at {dead}" in deadline_log
        assert "Traceback" not in deadline_log
    finally:
        worker.kill()


def test_a_sigkilled_worker_leaves_no_process_behind(
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    """With the ingest stage in a child process, SIGKILL of the worker alone (as the kernel's
    OOM killer would) must not leave that child consuming and producing on its own."""
    worker = worker_factory(STREAMAGG_INGEST_MODE="process")
    worker.wait_ready()
    assert worker.process is not None
    below = descendants(worker.process.pid)
    assert below, "the worker runs its ingest stage in a child process"
    try:
        worker.kill()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(alive(pid) for pid in below):
            time.sleep(0.5)
        left = [pid for pid in below if alive(pid)]
        assert not left, f"processes of the killed worker still running 20 s later: {left}"
    finally:
        kill_pids([pid for pid in below if alive(pid)])

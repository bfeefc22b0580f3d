"""A worker starts, joins its consumer groups, and answers health, readiness and metrics."""

from __future__ import annotations

import httpx

from tests.support.worker import WorkerProcess


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
        response = httpx.get(worker.base_url + path, timeout=10)
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

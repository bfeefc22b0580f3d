"""Fixtures of the end-to-end layer: streamagg workers as subprocesses on the test broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.worker import WorkerProcess, free_port, worker_env, write_tokens

ADMIN_TOKEN = "e2e-admin-token"
LIMITED_TOKEN = "e2e-limited-token"


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    """Tokens file: ADMIN_TOKEN may read every customer, LIMITED_TOKEN only customer "42"."""
    return write_tokens(tmp_path / "tokens.json", {ADMIN_TOKEN: ["*"], LIMITED_TOKEN: ["42"]})


@pytest.fixture
def worker_factory(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, tokens_file: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start workers sharing one test-private app id and topics; all are stopped at the end.

    Call it with extra STREAMAGG_* settings as keyword arguments; each call starts one more
    worker with its own port and data folder (several calls = a group sharing the partitions).
    """
    started: list[WorkerProcess] = []

    def start(**extra: str) -> WorkerProcess:
        index = len(started)
        port = free_port()
        data_dir = tmp_path / f"worker{index}" / "data"
        data_dir.mkdir(parents=True)
        env = worker_env(kafka_bootstrap, unique_name, data_dir, port, tokens_file, **extra)
        worker = WorkerProcess(env, data_dir, port, tmp_path / f"worker{index}.log").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()

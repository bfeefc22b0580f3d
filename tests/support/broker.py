"""A private single-node Kafka broker (deploy/kafka/kafka-local) on a free port: the one way the
test session, the fault scenarios and the bench start, stop and restart their own broker."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.common import BROKER_VARS
from tests.support.worker import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
KAFKA_LOCAL = REPO_ROOT / "deploy" / "kafka" / "kafka-local"
# Room for a first-time jar fetch plus the broker's own start timeout.
START_TIMEOUT_S = 600
STOP_TIMEOUT_S = 120


class BrokerError(RuntimeError):
    """kafka-local could not start or stop the broker (its output is in the message)."""


@dataclass
class PrivateBroker:
    """A single-node broker on a free port with its data in ``directory``; restartable.

    The broker never inherits the caller's kafka-local settings (BROKER_VARS), and stops by
    itself should the process that started it die without stopping it (KAFKA_OWNER_PID)."""

    directory: Path
    port: int = field(default_factory=free_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if k not in BROKER_VARS},
            "KAFKA_PORT": str(self.port),
            "KAFKA_DIR": str(self.directory),
            "KAFKA_OWNER_PID": str(os.getpid()),
        }

    def _run(self, command: str, timeout: float) -> None:
        done = subprocess.run(
            [str(KAFKA_LOCAL), command],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise BrokerError(
                f"kafka-local {command} failed (exit {done.returncode}):\n"
                f"{done.stdout}{done.stderr}"
            )

    def start(self) -> PrivateBroker:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._run("start", timeout=START_TIMEOUT_S)
        return self

    def stop(self) -> None:
        self._run("stop", timeout=STOP_TIMEOUT_S)

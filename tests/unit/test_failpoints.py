"""Failpoints: the fault suite's switches (streamagg/failpoints.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from aiokafka.errors import KafkaConnectionError, ProducerFenced

from streamagg import failpoints
from streamagg.errors import InjectedFault
from streamagg.kafka_clients import kafka_failure


def test_a_spec_names_points_their_probability_and_action() -> None:
    assert failpoints.parse("a.b=0.25, c.d=0.5:error,e.f") == {
        "a.b": (0.25, failpoints.KILL),
        "c.d": (0.5, failpoints.ERROR),
        "e.f": (1.0, failpoints.KILL),
    }
    assert failpoints.parse("") == {}


def test_an_error_point_raises_an_os_error_and_an_unset_point_does_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(failpoints, "_POINTS", failpoints.parse("x.y=1:error"))
    with pytest.raises(InjectedFault, match=r"failpoint x\.y") as raised:
        failpoints.failpoint("x.y")
    assert isinstance(raised.value, OSError)
    failpoints.failpoint("other.point")  # (not set: returns)


def test_a_point_of_probability_zero_never_acts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(failpoints, "_POINTS", failpoints.parse("x.y=0:error"))
    for _ in range(1000):
        failpoints.failpoint("x.y")


def test_a_kill_point_sigkills_its_process() -> None:
    code = "from streamagg.failpoints import failpoint; failpoint('x.y'); print('alive')"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "STREAMAGG_FAILPOINTS": "x.y=1"},
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL
    assert b"alive" not in done.stdout
    assert b"failpoint x.y: SIGKILL" in done.stderr


def test_a_stage_names_an_injected_error_and_says_unreachable_only_for_connections() -> None:
    address = "broker-1:9092"
    said = kafka_failure(address, InjectedFault("failpoint x.y: injected error"))
    assert said == "InjectedFault: failpoint x.y: injected error"
    assert kafka_failure(address, ProducerFenced()).startswith("ProducerFenced")
    for lost in (KafkaConnectionError("Unable to bootstrap"), ConnectionRefusedError(111, "no")):
        assert kafka_failure(address, lost).startswith("cannot reach Kafka at broker-1:9092")

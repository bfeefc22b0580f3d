"""Failpoints: let the fault-injection suite break a worker at exact moments of its work.

``STREAMAGG_FAILPOINTS="state.after-kafka-commit=0.02,ingest.before-commit=0.01:error"`` makes
``failpoint(name)`` act with that probability each time the code passes the named point: by
default it SIGKILLs this process (a crash); with ``:error`` it raises ``InjectedFault``, an
OSError such as a full disk or a dropped connection would raise there, and the process lives
on to handle it. Unset (always, outside tests), a failpoint is one dictionary lookup. The
points:

- ``state.before-kafka-commit``: a state transaction's records are sent, not committed;
- ``state.after-kafka-commit``: committed in Kafka, not yet in the local copy;
- ``state.catching-up``: recovery has applied part of the changelog to the local copy;
- ``ingest.before-commit`` / ``ingest.after-commit``: around an ingest transaction's commit.
"""

from __future__ import annotations

import os
import random
import signal

from streamagg.errors import InjectedFault

_VARIABLE = "STREAMAGG_FAILPOINTS"
KILL, ERROR = "kill", "error"


def parse(spec: str) -> dict[str, tuple[float, str]]:
    """``name=probability[:error]`` items, comma-separated → {name: (probability, action)}."""
    points: dict[str, tuple[float, str]] = {}
    for item in spec.split(","):
        name, _, setting = item.strip().partition("=")
        probability, _, action = setting.partition(":")
        if name:
            points[name] = (float(probability or 1), action or KILL)
    return points


_POINTS = parse(os.environ.get(_VARIABLE, ""))


def failpoint(name: str) -> None:
    point = _POINTS.get(name)
    if point is None:
        return
    probability, action = point
    if random.random() >= probability:
        return
    if action == ERROR:
        raise InjectedFault(f"failpoint {name}: injected error")
    os.write(2, f"failpoint {name}: SIGKILL\n".encode())
    os.kill(os.getpid(), signal.SIGKILL)

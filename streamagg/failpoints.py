"""Failpoints: let the fault-injection suite kill a worker at exact moments of its work.

``STREAMAGG_FAILPOINTS="state.after-kafka-commit=0.02,ingest.before-commit=0.01"`` makes
``failpoint(name)`` SIGKILL this process with that probability each time the code passes the
named point. Unset (always, outside tests), a failpoint is one dictionary lookup. The points:

- ``state.before-kafka-commit``: a state transaction's records are sent, not committed;
- ``state.after-kafka-commit``: committed in Kafka, not yet in the local copy;
- ``state.catching-up``: recovery has applied part of the changelog to the local copy;
- ``ingest.before-commit`` / ``ingest.after-commit``: around an ingest transaction's commit.
"""

from __future__ import annotations

import os
import random
import signal

_VARIABLE = "STREAMAGG_FAILPOINTS"


def _parse(spec: str) -> dict[str, float]:
    points: dict[str, float] = {}
    for item in spec.split(","):
        name, _, probability = item.strip().partition("=")
        if name:
            points[name] = float(probability or 1)
    return points


_POINTS = _parse(os.environ.get(_VARIABLE, ""))


def failpoint(name: str) -> None:
    probability = _POINTS.get(name)
    if probability is not None and random.random() < probability:
        os.write(2, f"failpoint {name}: SIGKILL\n".encode())
        os.kill(os.getpid(), signal.SIGKILL)

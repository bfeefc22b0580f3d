"""`python -m bench.decode BASE_TREE [ROUNDS]`: CPU per message of decode_cdr, this tree
against another, in alternating processes.

The bench generator's messages (seed 2026, 50,000 of one day, every `dt` spelling, string and
number amounts and ids) are decoded by `streamagg.cdr.decode_cdr` in a fresh process of each
tree in turn (BASE_TREE first on PYTHONPATH for the base), ROUNDS times (default 5); each
prints the median CPU per message of five passes. The medians of the rounds are compared: on a
shared machine one round of one tree varies by ±15 %, alternating evens that out.

    git worktree add /tmp/base <commit>
    python -m bench.decode /tmp/base
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

MESSAGES = 50_000
PASSES = 5


def one_process() -> float:
    """Median CPU µs per message of PASSES passes over the messages (run in the tree's own
    process: which streamagg it is comes from PYTHONPATH)."""
    from streamagg.cdr import TimePolicy, decode_cdr
    from streamagg.cli.cdrgen import CdrGenerator, GeneratorOptions

    now = time.time()
    options = GeneratorOptions(
        seed=2026, count=MESSAGES, start=now - 86400, event_step=86400 / MESSAGES
    )
    values = [value for _key, value in CdrGenerator(options).messages()]
    policy = TimePolicy()
    passes = []
    for _ in range(PASSES):
        began = time.process_time()
        for value in values:
            decode_cdr(value, now=now, policy=policy)
        passes.append((time.process_time() - began) / len(values) * 1e6)
    return statistics.median(passes)


def run(tree: Path | None) -> float:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = f"{tree}{os.pathsep}{env.get('PYTHONPATH', '')}"
    # (run by path: `bench` itself may be missing from the other tree)
    done = subprocess.run(
        [sys.executable, __file__, "--one"], env=env, check=True, capture_output=True, text=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def main(base: Path, rounds: int) -> None:
    found: dict[str, list[float]] = {"base": [], "this": []}
    for round_ in range(rounds):
        for label, tree in (("base", base.resolve()), ("this", None)):
            found[label].append(run(tree))
            print(f"round {round_} {label}: {found[label][-1]:.2f} µs CPU per message", flush=True)
    for label, figures in found.items():
        print(f"{label}: median {statistics.median(figures):.2f} µs per message")


if __name__ == "__main__":
    if sys.argv[1:] == ["--one"]:
        print(one_process())
    else:
        main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 5)

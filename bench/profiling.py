"""py-spy during the worker's throughput run, summarised for BENCHMARKS.md."""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

PROFILE_SECONDS = 10


def start(
    pids: list[int], out: Path, flamegraphs: Path | None = None, name: str = "worker"
) -> list[tuple[str, Path, subprocess.Popen]]:
    """py-spy record (raw, non-blocking) of each process for PROFILE_SECONDS; with
    flamegraphs, also a flame graph SVG per process there ({name}-main.svg, {name}-child-N.svg)."""
    pyspy = Path(sys.executable).parent / "py-spy"
    started = []
    for index, pid in enumerate(pids):
        label = "main process" if index == 0 else f"child process {index}"
        path = out / f"profile-{name}-{index}.txt"
        outputs = [("raw", path)]
        if flamegraphs is not None:
            flamegraphs.mkdir(parents=True, exist_ok=True)
            svg = flamegraphs / (f"{name}-main.svg" if index == 0 else f"{name}-child-{index}.svg")
            outputs.append(("flamegraph", svg))
        for form, target in outputs:
            command = [
                str(pyspy),
                "record",
                "--nonblocking",
                "-p",
                str(pid),
                "-d",
                str(PROFILE_SECONDS),
                "-f",
                form,
                "-o",
                str(target),
            ]
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if form == "raw":
                started.append((label, path, proc))
    return started


def summarise(started: list[tuple[str, Path, subprocess.Popen]], top: int = 8) -> list[str]:
    """Markdown lines: per process, the functions with the most samples on their own and
    the streamagg functions with the most samples including their callees."""
    lines = []
    for label, path, proc in started:
        try:
            proc.wait(timeout=PROFILE_SECONDS + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if not path.exists() or path.stat().st_size < 1000:
            continue
        own: collections.Counter[str] = collections.Counter()
        inclusive: collections.Counter[str] = collections.Counter()
        total = 0
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            samples = int(count)
            total += samples
            frames = stack.split(";")
            own[frames[-1]] += samples
            for frame in set(frames):
                if "streamagg/" in frame:
                    inclusive[frame] += samples
        if not total:
            continue
        lines.append(f"- {label} ({total} samples, all threads, idle included):")
        lines.append(
            "  - most samples on their own: "
            + "; ".join(f"`{frame}` {n / total * 100:.0f} %" for frame, n in own.most_common(top))
        )
        lines.append(
            "  - streamagg functions with their callees: "
            + "; ".join(
                f"`{frame}` {n / total * 100:.0f} %" for frame, n in inclusive.most_common(top)
            )
        )
    return lines

"""The bench's surroundings: the private broker, the machine, and a process's RSS and CPU."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import time
from pathlib import Path

from tests.support.broker import BrokerError, PrivateBroker
from tests.support.worker import free_port

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Broker(PrivateBroker):
    """The bench's private broker: a new free port at every start, nothing raised on stop."""

    def start(self) -> PrivateBroker:
        self.port = free_port()
        return super().start()

    def stop(self) -> None:
        with contextlib.suppress(BrokerError):
            super().stop()

    @property
    def kafka_dir(self) -> Path:
        return self.directory

    @property
    def pid(self) -> int | None:
        """The broker's JVM (kafka-local writes its pid), None when it is not known."""
        with contextlib.suppress(OSError, ValueError):
            return int((self.directory / "kafka.pid").read_text().strip())
        return None


def kafka_version() -> str:
    pom = (REPO / "deploy" / "kafka" / "pom.xml").read_text()
    found = re.search(r"<kafka.version>(.*?)</kafka.version>", pom)
    return found.group(1) if found else "?"


def machine() -> dict[str, str]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return {
        "cpus": str(os.cpu_count()),
        "cpu model": cpu,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load average at the start (1/5/15 min)": " ".join(
            Path("/proc/loadavg").read_text().split()[:3]
        ),
        "kafka": f"Apache Kafka {kafka_version()} (KRaft, single node, deploy/kafka/kafka-local)",
    }


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (the worker runs its ingest stage in a child process)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_bytes(pid: int) -> int:
    """VmRSS of one process, 0 when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) * 1024 if found else 0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used (every core), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS

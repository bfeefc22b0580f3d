"""Throughput from progress samples: (wall time, messages done so far)."""

from __future__ import annotations

from dataclasses import dataclass

Samples = list[tuple[float, int]]


def time_at(samples: Samples, target: float) -> float:
    """When the count reached target, linearly interpolated between two samples."""
    previous = samples[0]
    for sample in samples:
        if sample[1] >= target:
            t0, c0 = previous
            t1, c1 = sample
            if c1 == c0:
                return t1
            return t0 + (t1 - t0) * (target - c0) / (c1 - c0)
        previous = sample
    raise ValueError(f"count never reached {target}")


@dataclass(frozen=True)
class Throughput:
    total: int
    seconds: float  # first message processed → last
    steady_rate: float  # messages/s between 10 % and 90 % of the total
    cpu_seconds: float = 0.0  # CPU time the pipeline's processes used meanwhile (0 = unknown)

    @property
    def overall_rate(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0

    @property
    def per_cpu_second(self) -> float:
        return self.total / self.cpu_seconds if self.cpu_seconds > 0 else 0.0


def throughput(samples: Samples, total: int, cpu_seconds: float = 0.0) -> Throughput:
    started = next(t for t, c in samples if c > 0)
    finished = time_at(samples, total)
    low, high = time_at(samples, 0.1 * total), time_at(samples, 0.9 * total)
    steady = 0.8 * total / (high - low) if high > low else 0.0
    return Throughput(total, finished - started, steady, cpu_seconds)

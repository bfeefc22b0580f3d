"""bench/soak.py's verdict (flat within ±10 % of the median after the warm-up, the trend) and
how it replaces its own section of BENCHMARKS.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import BEGIN, END, MIB, WARM_UP_S, trend_mib_per_10_min, verdict, write_section


def series(sizes_mib: list[float], every_s: float = 60.0) -> list[tuple[float, int]]:
    return [(i * every_s, int(size * MIB)) for i, size in enumerate(sizes_mib)]


def test_a_steady_soak_is_flat_and_its_warm_up_does_not_count() -> None:
    # Five minutes of growth (caches filling), then steady around 800 MiB.
    samples = series([300, 500, 650, 750, 790] + [800, 810, 795, 805, 800] * 5)
    found = verdict(samples)
    assert found["flat"] is True
    assert found["min"] == 795 * MIB and found["max"] == 810 * MIB
    assert found["first"] == 300 * MIB
    assert abs(found["trend"]) < 1.0


def test_a_leak_is_not_flat_and_shows_in_the_trend() -> None:
    samples = series([800 + 10 * i for i in range(31)])  # +10 MiB a minute
    found = verdict(samples)
    assert found["flat"] is False
    assert found["trend"] == pytest.approx(100.0)  # MiB per 10 minutes
    assert trend_mib_per_10_min(samples[:1]) == 0.0
    assert WARM_UP_S == 300.0  # (the series above assume five minutes of warm-up)


def test_the_section_is_replaced_in_place_or_appended(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nkept\n")
    write_section(f"{BEGIN}\nfirst\n{END}", path)
    assert path.read_text() == f"# Benchmarks\n\nkept\n\n{BEGIN}\nfirst\n{END}\n"
    path.write_text(path.read_text() + "\n## after\n")
    write_section(f"{BEGIN}\nsecond\n{END}", path)
    assert path.read_text() == f"# Benchmarks\n\nkept\n\n{BEGIN}\nsecond\n{END}\n\n## after\n"

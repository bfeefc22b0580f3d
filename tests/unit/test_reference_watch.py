"""The worker's watch of its reference files outlives a failure of one of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import SimpleNamespace
from typing import Any, cast

import pytest

from streamagg.app import watch_reference_files


class Reloads:
    def __init__(self, fails: bool) -> None:
        self.fails = fails
        self.calls = 0

    def maybe_reload(self) -> bool:
        self.calls += 1
        if self.fails:
            raise RuntimeError("a bug in the loader")
        return False


async def test_a_failing_rate_center_reload_does_not_end_the_tokens_reload(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rate_centers, tokens = Reloads(fails=True), Reloads(fails=False)
    runtime = SimpleNamespace(
        rate_centers=rate_centers,
        tokens=tokens,
        settings=SimpleNamespace(ratecenters_check_seconds=0.01),
    )
    with caplog.at_level(logging.ERROR):
        watch = asyncio.create_task(watch_reference_files(cast(Any, runtime)))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if tokens.calls >= 3:
                break
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    assert tokens.calls >= 3 and rate_centers.calls >= 3
    assert "rate centers: the reload failed" in caplog.text

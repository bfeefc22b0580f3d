"""Command-line value types: a bad value is argparse's one-line usage error (exit 2), never a
traceback further on (`--rate nan` ran unthrottled; `--rate inf` overflowed mid-send)."""

from __future__ import annotations

import argparse
import math


def non_negative_number(text: str) -> float:
    """A finite number ≥ 0 (`1e3` included; `nan`, `inf`, `-5` refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of at least 0")
    return value


def percent(text: str) -> float:
    """A share in per cent, 0 to 100."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage from 0 to 100")
    return value

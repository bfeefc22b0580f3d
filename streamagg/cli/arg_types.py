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


def positive_integer(text: str) -> int:
    """A whole number ≥ 1, in ASCII digits."""
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def kafka_id_part(text: str) -> str:
    """A name to put in a Kafka transactional id and group id: 1-100 of A-Z a-z 0-9 . _ -"""
    allowed = all(c.isascii() and (c.isalnum() or c in "._-") for c in text)
    if not 1 <= len(text) <= 100 or not allowed:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not 1 to 100 of the characters A-Z a-z 0-9 . _ -"
        )
    return text

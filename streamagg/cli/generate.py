"""`streamagg generate`: send a synthetic, seed-deterministic CDR stream to the CDR topic."""

from __future__ import annotations

import argparse
import csv
import itertools
import multiprocessing
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streamagg.cli.arg_types import non_negative_number
from streamagg.cli.cdrgen import (
    DEFAULT_ASR_DROP_FACTOR,
    DT_SPELLINGS,
    CdrGenerator,
    GeneratorOptions,
)
from streamagg.cli.cdrplan import TECH_PREFIXES
from streamagg.cli.kafka_out import Message, SendPlan, progress_wanted, send_messages
from streamagg.settings import Settings

# As-fast-as-possible runs of at least this many messages synthesise them in a child process.
SUBPROCESS_FROM_COUNT = 50_000
SUBPROCESS_CHUNK = 5000
_YEAR_10000 = 253_402_300_800  # epoch seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Send a realistic synthetic CDR stream to the CDR topic (STREAMAGG_TOPIC). "
        "The same --seed, --start and options give byte-identical messages."
    )
    parser.formatter_class = _HelpWithDefaults
    volume = parser.add_argument_group("volume and timing")
    volume.add_argument(
        "--rate",
        type=non_negative_number,
        default=0.0,
        help="calls per second; 0 = as fast as possible",
    )
    volume.add_argument("--count", type=int, default=0, help="messages to send; 0 = endless")
    volume.add_argument(
        "--duration",
        type=non_negative_number,
        default=None,
        help="seconds to run (with --rate: sends rate × duration messages)",
    )
    volume.add_argument(
        "--start",
        default=None,
        help="event time of the first call: ISO-8601 (no zone = UTC) or epoch "
        "seconds; default: now",
    )
    volume.add_argument(
        "--event-step",
        type=non_negative_number,
        default=0.001,
        help="with --rate 0: event-time seconds between two calls",
    )
    shape = parser.add_argument_group("traffic shape")
    shape.add_argument("--seed", type=int, default=1, help="random seed of the calls")
    shape.add_argument(
        "--world-seed",
        type=int,
        default=1,
        help="random seed of the accounts' tech prefixes and DIDs; keep it when several runs "
        "(different --seed) must share one DID inventory",
    )
    shape.add_argument(
        "--customers", type=int, default=40, help="customer accounts (Zipf-like volume)"
    )
    shape.add_argument("--providers", type=int, default=6, help="terminating carriers")
    shape.add_argument(
        "--asr-drop",
        action="append",
        default=[],
        metavar="PREFIX[:FACTOR]",
        help="multiply one tech prefix's ASR by FACTOR "
        f"(default {DEFAULT_ASR_DROP_FACTOR}); prefixes: "
        + ", ".join(repr(p) for p in TECH_PREFIXES)
        + "; repeatable",
    )
    shape.add_argument(
        "--dtmf-fraction", type=float, default=0.03, help="share of calls with DTMF digits"
    )
    shape.add_argument(
        "--late-fraction",
        type=float,
        default=0.02,
        help="share of CDRs dated hours to days in the past",
    )
    shape.add_argument(
        "--duplicate-fraction",
        type=float,
        default=0.01,
        help="share of messages re-sending an earlier CDR byte for byte",
    )
    shape.add_argument(
        "--invalid-fraction",
        type=float,
        default=0.0,
        help="share of malformed messages (for the dead-letter topic)",
    )
    shape.add_argument(
        "--dt-format",
        action="append",
        choices=DT_SPELLINGS,
        default=[],
        help="spelling(s) of dt to use, repeatable; default: all, mixed",
    )
    shape.add_argument(
        "--key",
        choices=("customer", "none"),
        default="customer",
        help="message key: the customer id, or no key",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--dids-out",
        type=Path,
        default=None,
        help="write the DID inventory the stream uses (did,account CSV)",
    )
    output.add_argument(
        "--ratecenters-out",
        type=Path,
        default=None,
        help="write a prefix,rc,state CSV for the dialed NANP prefixes",
    )
    output.add_argument(
        "--reference-only",
        action="store_true",
        help="write the --dids-out/--ratecenters-out files and exit without sending",
    )
    output.add_argument(
        "--dry-run",
        action="store_true",
        help="write the messages' values to stdout as JSON lines, no Kafka",
    )
    output.add_argument(
        "--progress", action="store_true", help="show progress even when stderr is not a terminal"
    )


class _HelpWithDefaults(argparse.HelpFormatter):
    """Shows an option's default where it has a meaningful one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, [], False, argparse.SUPPRESS) or not action.help:
            return action.help
        return action.help + " (default: %(default)s)"


def options_from_args(args: argparse.Namespace, now: float | None = None) -> GeneratorOptions:
    """Turn parsed command-line options into generator options (ValueError when bad)."""
    start = epoch_seconds(args.start) if args.start else (now or time.time())
    count = args.count
    if args.duration is not None and args.rate > 0:
        limit = round(args.duration * args.rate)
        count = min(count, limit) if count else limit
    for name in ("dtmf_fraction", "late_fraction", "duplicate_fraction", "invalid_fraction"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise ValueError(f"--{name.replace('_', '-')} must be between 0 and 1")
    if args.rate < 0 or count < 0:
        raise ValueError("--rate and --count must not be negative")
    return GeneratorOptions(
        seed=args.seed,
        world_seed=args.world_seed,
        count=count,
        start=start,
        rate=args.rate,
        event_step=args.event_step,
        customers=args.customers,
        providers=args.providers,
        asr_drop=parse_asr_drops(args.asr_drop),
        dtmf_fraction=args.dtmf_fraction,
        late_fraction=args.late_fraction,
        duplicate_fraction=args.duplicate_fraction,
        invalid_fraction=args.invalid_fraction,
        dt_spellings=tuple(args.dt_format) or DT_SPELLINGS,
        key_by_customer=args.key == "customer",
    )


def parse_asr_drops(values: Iterable[str]) -> dict[str, float]:
    """`123#:0.3` → {"123#": 0.3}; a bare prefix takes the default factor; `:0.3` is ""."""
    drops = {}
    for value in values:
        prefix, _, factor = value.rpartition(":") if ":" in value else (value, "", "")
        try:
            drops[prefix] = float(factor) if factor else DEFAULT_ASR_DROP_FACTOR
        except ValueError:
            raise ValueError(f"--asr-drop {value!r}: FACTOR must be a number") from None
        if not 0.0 <= drops[prefix] <= 1.0:
            raise ValueError(f"--asr-drop {value!r}: FACTOR must be between 0 and 1")
    return drops


def epoch_seconds(text: str) -> float:
    """Parse a --start value: ISO-8601 (no zone = UTC) or epoch seconds, from 1970 to 9999."""
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"--start {text[:40]!r}: not an ISO-8601 time or epoch seconds"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    if not 0 <= seconds < _YEAR_10000:  # (nan fails this too)
        raise ValueError(f"--start {text[:40]!r}: not a time from 1970 to 9999")
    return seconds


def write_csv(path: Path, header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        generator = CdrGenerator(options_from_args(args))
    except ValueError as exc:
        print(f"streamagg generate: {exc}", file=sys.stderr)
        return 2
    try:
        if args.dids_out:
            write_csv(args.dids_out, ("did", "account"), generator.did_inventory())
        if args.ratecenters_out:
            rows = generator.rate_center_rows()
            write_csv(args.ratecenters_out, ("prefix", "rc", "state"), rows)
    except OSError as exc:
        print(f"streamagg generate: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    if args.reference_only:
        return 0
    if args.dry_run:
        return _print_values(generator, args.duration)
    options = generator.options
    plan = SendPlan(
        rate=options.rate,
        total=options.count or None,
        time_limit=args.duration if options.rate == 0 else None,
        show_progress=progress_wanted(args.progress),
        label="generate",
    )
    messages: Iterable[Message] = generator.messages()
    big = options.count == 0 or options.count >= SUBPROCESS_FROM_COUNT
    if options.rate == 0 and big and "fork" in multiprocessing.get_all_start_methods():
        messages = synthesised_in_subprocess(options)
    summary = send_messages(settings, settings.topic, messages, plan)
    print(summary.line(), file=sys.stderr)
    return {"SIGINT": 130, "SIGTERM": 143}.get(summary.stopped_by or "", 0)


def synthesised_in_subprocess(options: GeneratorOptions) -> Iterator[Message]:
    """The same messages, synthesised by a child process: synthesis and sending use two cores."""
    # fork, not spawn: the child needs nothing re-imported and touches none of our connections.
    context = multiprocessing.get_context("fork")
    chunks: multiprocessing.Queue[list[Message] | None] = context.Queue(maxsize=16)
    child = context.Process(target=_synthesise_into, args=(options, chunks), daemon=True)
    child.start()
    try:
        while (chunk := chunks.get()) is not None:
            yield from chunk
    finally:
        child.terminate()
        child.join()


def _synthesise_into(options: GeneratorOptions, chunks: multiprocessing.Queue[Any]) -> None:
    # Undo the parent's event-loop signal handling: our signals must not reach its loop.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops us after its summary
    messages = CdrGenerator(options).messages()
    while chunk := list(itertools.islice(messages, SUBPROCESS_CHUNK)):
        chunks.put(chunk)
    chunks.put(None)


def _print_values(generator: CdrGenerator, duration: float | None) -> int:
    if not generator.options.count and duration is None:
        print("streamagg generate: --dry-run needs --count or --duration", file=sys.stderr)
        return 2
    out = sys.stdout.buffer
    deadline = time.monotonic() + duration if duration and not generator.options.count else None
    for _key, value in generator.messages():
        out.write(value + b"\n")
        if deadline is not None and time.monotonic() >= deadline:
            break
    out.flush()
    return 0

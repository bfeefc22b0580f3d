"""The `streamagg` command: worker, generate, replay, dids, check."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streamagg.cli.arg_types import non_negative_number, percent
from streamagg.errors import StreamaggError
from streamagg.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamagg",
        description="Live CDR reports for VoIP carriers. Settings come from STREAMAGG_* "
        "environment variables (docs/configuration.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("worker", help="run one worker (ingest, reports, HTTP API)")

    from streamagg.cli import generate, replay

    generate.add_arguments(sub.add_parser("generate", help="send a synthetic CDR stream"))
    replay.add_arguments(sub.add_parser("replay", help="send a CDR export to Kafka"))

    dids = sub.add_parser("dids", help="manage the DID inventory")
    dids_sub = dids.add_subparsers(dest="dids_command", required=True, metavar="ACTION")
    load = dids_sub.add_parser("load", help="publish a DID inventory CSV (did,account)")
    load.add_argument("file", help="CSV file with the header line did,account")
    load.add_argument(
        "--replace",
        action="store_true",
        help="the file is the whole inventory: DIDs missing from it are removed",
    )
    load.add_argument(
        "--max-removals",
        type=percent,
        default=10.0,
        metavar="PERCENT",
        help="with --replace: refuse (publish nothing) when more than this share of the DIDs "
        "published would be removed, and more than 100 DIDs: a truncated export (default: 10)",
    )

    check = sub.add_parser("check", help="exit 0 when the worker at URL is ready")
    check.add_argument("--url", default=None, help="worker base URL (default: this host's)")
    check.add_argument("--timeout", type=non_negative_number, default=5.0, help="seconds to wait")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return _dispatch(args, settings)
    except StreamaggError as exc:
        print(f"streamagg: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "worker":
        from streamagg.cli.worker import run_worker

        return run_worker(settings)
    if args.command == "generate":
        from streamagg.cli import generate

        return generate.run(args, settings)
    if args.command == "replay":
        from streamagg.cli import replay

        return replay.run(args, settings)
    if args.command == "dids":
        from streamagg.cli import did_loader

        return did_loader.run(args, settings)
    if args.command == "check":
        from streamagg.cli import check

        return check.run(args, settings)
    raise AssertionError(args.command)

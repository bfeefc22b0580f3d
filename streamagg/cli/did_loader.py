"""`streamagg dids load FILE [--replace [--max-removals PERCENT]]`: publish a DID inventory CSV
to the DID topic."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import logging
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka.errors import KafkaError
from tqdm import tqdm

from streamagg.cdr.model import ID_MAX_CHARS, is_account_id
from streamagg.csv_lines import csv_lines
from streamagg.errors import BrokerUnavailable, ReferenceDataError, StreamaggError
from streamagg.kafka_clients import acked_producer, authentication_failure
from streamagg.numbers import normalise_number
from streamagg.reference.dids import (
    broker_unavailable,
    ensure_dids_topic,
    read_inventory,
)
from streamagg.settings import Settings

__all__ = ["DidFile", "parse_did_csv", "run"]

#: Shortest and longest DID after normalisation: a NANP number, up to a full E.164 number.
MIN_DIGITS, MAX_DIGITS = 10, 15
#: What a phone number may be written with besides digits: `+1 (212) 555-0100`, `212.555.0100`.
_NUMBER_CHARS = re.compile(r"[0-9+\-(). \t]+")
_SEND_CHUNK = 5_000
_PROGRESS_FROM = 20_000

EXIT_OK, EXIT_SKIPPED_ROWS, EXIT_FAILED = 0, 1, 2
#: `--replace` removes this many DIDs whatever share of the inventory they are.
REMOVALS_ALWAYS_ALLOWED = 100


@dataclass
class DidFile:
    """A parsed inventory file: the usable DIDs and what was wrong with the other lines."""

    owners: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: DIDs named on a bad line: `--replace` leaves them as they are rather than removing them.
    unsure: set[str] = field(default_factory=set)


def parse_did_csv(path: Path) -> DidFile:
    """Read a `did,account` CSV; raise ReferenceDataError when the file cannot be used at all."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ReferenceDataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReferenceDataError(f"{path}: is a folder, not a CSV file") from None
    except UnicodeDecodeError as exc:
        raise ReferenceDataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ReferenceDataError(f"{path}: cannot read it ({exc.strerror})") from None
    # (io, not str.splitlines: that also breaks lines at U+2028, \x1c-\x1e, form feeds)
    return parse_did_lines(str(path), io.StringIO(text, newline=""))


def parse_did_lines(name: str, lines: Iterable[str]) -> DidFile:
    """Parse the lines of an inventory CSV; ``name`` prefixes each problem (`FILE:LINE: ...`)."""
    result = DidFile()
    first_line: dict[str, int] = {}
    rows = csv_lines(lines)
    header = next(rows, None)
    cells = header.cells if header is not None else []
    columns = [c.strip().lstrip("\ufeff").lower() for c in cells]
    if "did" not in columns or "account" not in columns:
        shown = (header.text or ",".join(cells)) if header is not None else ""
        raise ReferenceDataError(
            f"{name}: expected a header line did,account, found {shown or 'an empty file'!r}"
        )
    did_at, account_at = columns.index("did"), columns.index("account")
    for row in rows:
        if row.problem is not None:
            result.problems.append(f"{name}:{row.number}: {row.problem}")
            # (what the line would name without its quotes: kept by --replace, not removed)
            unquoted = next(csv.reader((row.text.replace('"', ""),)), [])
            if did_at < len(unquoted):
                result.unsure.add(normalise_number(unquoted[did_at].strip()))
            continue
        if not any(cell.strip() for cell in row.cells):
            continue
        raw = row.cells[did_at].strip() if did_at < len(row.cells) else ""
        account = row.cells[account_at].strip() if account_at < len(row.cells) else ""
        did = normalise_number(raw)
        problem = _row_problem(raw, did, account)
        if problem is None and did in result.owners and result.owners[did] != account:
            problem = (
                f"DID {did} is given to account {account!r} here but to "
                f"{result.owners[did]!r} on line {first_line[did]}; the first one is kept"
            )
        if problem is not None:
            result.problems.append(f"{name}:{row.number}: {problem}")
            if MIN_DIGITS <= len(did) <= MAX_DIGITS and did not in result.owners:
                result.unsure.add(did)
            continue
        if did not in result.owners:
            result.owners[did] = account
            first_line[did] = row.number
    result.unsure -= result.owners.keys()
    return result


def _row_problem(raw: str, did: str, account: str) -> str | None:
    if not raw:
        return "no DID"
    if not _NUMBER_CHARS.fullmatch(raw):
        return f"DID {raw!r} is not a phone number"
    if not MIN_DIGITS <= len(did) <= MAX_DIGITS:
        return f"DID {raw!r} has {len(did)} digits; a DID has {MIN_DIGITS} to {MAX_DIGITS}"
    if not account:
        return f"DID {did} has no account"
    if not is_account_id(account):
        return (
            f"DID {did}: account {account[:40]!r} is not a customer id (at most "
            f"{ID_MAX_CHARS} characters, no control characters)"
        )
    return None


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Entry point of `streamagg dids load`; returns the exit code."""
    # aiokafka logs every failed connection attempt; the one line below says it better.
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
    try:
        inventory = parse_did_csv(Path(args.file))
        for problem in inventory.problems:
            print(problem, file=sys.stderr)
        skipped = len(inventory.problems)
        if not inventory.owners:
            raise ReferenceDataError(
                f"{args.file}: no usable DID row ({skipped} bad rows); nothing was published"
            )
        published, removed, kept = asyncio.run(
            publish(settings, inventory, replace=bool(args.replace), max_removals=args.max_removals)
        )
    except StreamaggError as exc:
        message = str(exc)
        if isinstance(exc, BrokerUnavailable):  # a refused login reads like a broker down
            message = asyncio.run(authentication_failure(settings)) or message
        print(f"streamagg: {message}", file=sys.stderr)
        return EXIT_FAILED
    summary = f"published {published}, removed {removed}, skipped {skipped} bad rows"
    if kept:
        summary += f" (kept {kept} DIDs named on bad rows as they were)"
    print(f"{summary} to topic {settings.dids_topic}")
    return EXIT_SKIPPED_ROWS if skipped else EXIT_OK


async def publish(
    settings: Settings, inventory: DidFile, *, replace: bool, max_removals: float | None = None
) -> tuple[int, int, int]:
    """Send every DID of ``inventory`` (and, with ``replace``, tombstones for the others).

    Returns (published, removed, kept): kept counts DIDs that `--replace` left in place because
    the file named them only on bad lines. ReferenceDataError, nothing sent, when ``replace``
    would remove more than ``max_removals`` % of the DIDs published (and more than
    REMOVALS_ALWAYS_ALLOWED): a truncated export must not wipe the inventory (None: no bound).
    """
    await ensure_dids_topic(settings)
    gone: list[str] = []
    kept = 0
    if replace:
        current = await read_inventory(settings)
        gone = sorted(did for did in current if did not in inventory.owners)
        kept = sum(1 for did in gone if did in inventory.unsure)
        gone = [did for did in gone if did not in inventory.unsure]
        if (
            max_removals is not None
            and len(gone) > REMOVALS_ALWAYS_ALLOWED
            and len(gone) * 100 > max_removals * len(current)
        ):
            raise ReferenceDataError(
                f"--replace would remove {len(gone):,} of the {len(current):,} DIDs published "
                f"({len(gone) * 100 / len(current):.0f} %), more than --max-removals "
                f"{max_removals:g} % allows; nothing was published. If the file is the whole "
                f"inventory (not a cut-off export), run it again with --max-removals 100"
            )
    records: list[tuple[bytes, bytes | None]] = [
        (did.encode(), orjson.dumps({"account": account}))
        for did, account in inventory.owners.items()
    ]
    records += [(did.encode(), None) for did in gone]
    await _send_all(settings, records)
    return len(inventory.owners), len(gone), kept


async def _send_all(settings: Settings, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = acked_producer(settings, linger_ms=20)
    topic = settings.dids_topic
    progress = tqdm(
        total=len(records),
        unit="DID",
        desc="publishing",
        file=sys.stderr,
        disable=len(records) < _PROGRESS_FROM or None,
    )
    try:
        await producer.start()
        for start in range(0, len(records), _SEND_CHUNK):
            chunk = records[start : start + _SEND_CHUNK]
            # Bounded batches: acks for a few thousand sends at a time, not millions of futures.
            sent = [await producer.send(topic, value=value, key=key) for key, value in chunk]
            await asyncio.gather(*sent)
            progress.update(len(chunk))
    except (KafkaError, OSError) as exc:
        raise broker_unavailable(settings, exc) from exc
    finally:
        progress.close()
        await producer.stop()

"""Dead-letter records: a message the pipeline cannot use, kept whole (or as much of it as the
broker takes) with the reason and where it came from, for the dead-letter topic."""

from __future__ import annotations

import hashlib

from aiokafka import ConsumerRecord

from streamagg.kafka_clients import MAX_BATCH_BYTES

DLQ_HEADROOM = 2_000  # bytes for the headers and the record's framing


def dead_letter(
    message: ConsumerRecord, reason: str, source: str
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The DLQ record of a rejected message: its bytes, and headers naming the reason and the
    source. A value the broker would refuse (a compressed batch can carry messages larger than
    its limit) is cut to fit, with a `truncated` header giving its size and SHA-256, so that
    the original can be found and checked in the input topic."""
    value = message.value or b""
    headers = [("error", reason.encode()), ("source", f"{source}/{message.offset}".encode())]
    room = MAX_BATCH_BYTES - len(message.key or b"") - DLQ_HEADROOM
    if len(value) > room:
        digest = hashlib.sha256(value).hexdigest()
        headers.append(("truncated", f"{len(value)} bytes, sha256 {digest}".encode()))
        value = value[:room]
    return value, headers

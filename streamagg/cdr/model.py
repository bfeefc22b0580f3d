"""The accepted CDR (SPEC §1) as the rest of streamagg sees it, and the decoding policy."""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgspec

MAX_MESSAGE_BYTES = 64 * 1024
MAX_DURATION = 86400
MAX_PDD_MS = 300_000
NO_SIP_CODE = 0  # Cdr.sip_code of a CDR without one
NO_PDD = -1  # Cdr.pdd_ms of a CDR without one
# Final SIP codes of calls the network completed (ITU-T E.425's "effective" calls): answered,
# or ended by the called user (busy, declined, not available, cancelled by the caller).
EFFECTIVE_SIP_CODES = frozenset((200, 486, 600, 603, 480, 487))
ID_MAX_CHARS = 128
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def is_account_id(text: str) -> bool:
    """What a customer id (an account) may be: 1 to ID_MAX_CHARS characters, none a control
    character (C0, DEL, C1)."""
    return 0 < len(text) <= ID_MAX_CHARS and CONTROL_CHARACTERS.search(text) is None


class Cdr(msgspec.Struct, array_like=True, gc=False):
    """One accepted call, normalised: UTC epoch seconds, money and talk time in micro-units.

    A msgspec struct: built in C, and carried inside batch messages as a positional array
    (streamagg/batches.py) whose schema is this field order.
    """

    callid: str
    customer_id: str
    start: int  # epoch seconds (UTC) of the call start, fractions dropped
    provider_id: str
    customer_charge: int  # micro-units (6 decimals), exact
    provider_charge: int
    tech_prefix: str
    duration: int  # micro-seconds of billed talk time
    answered: bool
    has_dtmf: bool
    nanp_number: str  # the 10 NANP digits of dest_number, or "" when it is not NANP
    cli: str  # dest_cli normalised (digits; NANP 11 → 10), or ""
    did_owner: str = ""  # owner account when cli is a DID of the inventory, set by the ingest stage
    # (Fields added later go last, with a default: batches written before them still decode.)
    sip_code: int = NO_SIP_CODE  # final SIP response code, 100-699
    pdd_ms: int = NO_PDD  # post-dial delay, 0-300,000 ms

    @property
    def effective(self) -> bool:
        """Answered or ended by the called user (SPEC §6, NER); without a SIP code, a call
        answered by the duration rule."""
        if self.sip_code == NO_SIP_CODE:
            return self.answered
        return self.sip_code in EFFECTIVE_SIP_CODES

    @property
    def hour(self) -> int:
        """Epoch hour of the call start (its report bucket)."""
        return self.start // 3600


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message breaks the contract: one line that names the field."""

    reason: str


@dataclass(frozen=True, slots=True)
class TimePolicy:
    """Which call start times are accepted, relative to the current time."""

    retention_days: int = 400
    future_tolerance_hours: int = 24


DEFAULT_POLICY = TimePolicy()

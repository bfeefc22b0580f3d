"""Telephone numbers as the reports key them: NANP destinations and normalised caller ids."""

from __future__ import annotations

import re

_NON_DIGITS = re.compile(r"[^0-9]")


def nanp_number(dest_number: str, tech_prefix: str) -> str:
    """The 10 NANP digits the call dialed (SPEC §2 rate-center), or "" when it is not NANP."""
    number = dest_number
    if tech_prefix and number.startswith(tech_prefix):
        number = number[len(tech_prefix) :]
    if number.startswith("+"):
        number = number[1:]
    if len(number) == 11 and number[0] == "1":
        number = number[1:]
    # (isascii and isdigit: the digits 0-9 only, as the pattern [2-9][0-9]{2}[2-9][0-9]{6})
    if len(number) == 10 and number.isascii() and number.isdigit():
        return number if number[0] not in "01" and number[3] not in "01" else ""
    return ""


def normalise_number(number: str) -> str:
    """Digits only, an 11-digit number starting with 1 shortened to its 10 NANP digits."""
    digits = number if number.isascii() and number.isdigit() else _NON_DIGITS.sub("", number)
    if len(digits) == 11 and digits[0] == "1":
        return digits[1:]
    return digits

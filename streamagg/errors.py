"""Every exception streamagg raises on purpose: one root, StreamaggError, and its tree."""

from __future__ import annotations


class StreamaggError(Exception):
    """Root of every error streamagg raises on purpose."""


class SettingsError(StreamaggError, ValueError):
    """An environment variable holds a value streamagg cannot use."""


class InvalidCdr(StreamaggError, ValueError):
    """A CDR message breaks the input contract; the message names the field."""


class ReferenceDataError(StreamaggError, ValueError):
    """A reference-data file (rate centers, DIDs) cannot be used as a whole."""


class BadQuery(StreamaggError, ValueError):
    """A report query has a bad parameter; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class BrokerUnavailable(StreamaggError, ConnectionError):
    """The Kafka cluster named by the settings cannot be reached."""


class StateError(StreamaggError):
    """The state of a partition cannot be read or written (its folder, its format, its log)."""


class FormatError(StreamaggError, ValueError):
    """Data written by streamagg in a format version this version cannot read."""


class NotOwner(StreamaggError):
    """Another worker owns the partition."""

    def __init__(self, partition: int) -> None:
        super().__init__(f"partition {partition} is owned by another worker")
        self.partition = partition


class Unavailable(StreamaggError):
    """This worker owns the partition but cannot answer from it now."""


class AccessDenied(StreamaggError, PermissionError):
    """A request may not read a report; status is 401 (who are you) or 403 (not yours)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RateCenterLoadError(ReferenceDataError):
    """The rate-center files as a whole cannot be used; nothing is replaced."""

    def __init__(self, failures: list[str], problems: list[str]) -> None:
        super().__init__("rate centers not loaded: " + "; ".join(failures))
        self.failures = failures  # one line per file or path that failed the load
        self.problems = problems  # rejected rows of the files that could be read


class InjectedFault(StreamaggError, OSError):
    """A failpoint's error (streamagg/failpoints.py): stands for a full disk or a lost
    connection at that moment; only the fault-injection suite sets failpoints."""

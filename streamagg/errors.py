"""The one exception root of streamagg and its direct descendants."""

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

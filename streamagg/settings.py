"""One frozen settings object, built once from the environment (SPEC §5)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from streamagg.errors import SettingsError

_PREFIX = "STREAMAGG_"
NUMBER_RANGES = {
    "web_port": (1, 65_535),
    "partitions": (1, 10_000),
    "ratecenters_check_seconds": (1, 86_400),
    # (back to 1971 at the most: report bucket keys count hours from 1970 on)
    "retention_days": (1, 20_000),
    "dedup_hours": (1, 480_000),
    "future_tolerance_hours": (0, 8_760),  # a year
    "standby_replicas": (0, 100),
    "ingest_linger_ms": (0, 60_000),
    "ingest_max_records": (1, 1_000_000),
    "batch_max_cdrs": (1, 1_000_000),
    "column_sums_from": (0, 1_000_000_000),
    "metrics_max_prefixes": (1, 1_000_000),
    "web_idle_seconds": (1, 86_400),
    "web_max_connections": (1, 1_000_000),
}
# Records of a state transaction from which its report sums are computed on columns: below,
# Polars' fixed cost per step (~0.1-0.3 ms) outweighs the per-CDR work it saves
# (`python -m bench.column_sums`, BENCHMARKS.md, issue 15, eleventh session).
COLUMN_SUMS_FROM = 5_000
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def _doc(text: str, secret: bool = False) -> dict[str, object]:
    return {"doc": text, "secret": secret}


@dataclass(frozen=True)
class Settings:
    """Every knob of a worker and of the CLI commands; see docs/configuration.md."""

    broker: str = field(
        default="kafka://localhost:9092",
        metadata=_doc("Kafka bootstrap servers, `kafka://host:port[;host:port...]`."),
    )
    web_port: int = field(default=6066, metadata=_doc("HTTP port of the worker."))
    web_bind: str = field(default="0.0.0.0", metadata=_doc("Address the HTTP server binds."))
    web_host: str = field(
        default_factory=socket.gethostname,
        metadata=_doc("Host name other workers use to reach this one (request forwarding)."),
    )
    web_tls_certfile: Path | None = field(
        default=None,
        metadata=_doc("Certificate (PEM, with its chain) of the HTTP API; set it to serve HTTPS."),
    )
    web_tls_keyfile: Path | None = field(
        default=None, metadata=_doc("Private key (PEM) of that certificate.")
    )
    web_tls_cafile: Path | None = field(
        default=None,
        metadata=_doc(
            "CA bundle this worker trusts when it forwards a request to another worker over "
            "HTTPS (default: the system's CAs)."
        ),
    )
    web_access_log: str = field(
        default="on",
        metadata=_doc(
            "`on`: one log line per API request (status, path, token hash prefix, customer, "
            "report, duration) on the logger `streamagg.access`; `off`: none."
        ),
    )
    web_idle_seconds: int = field(
        default=15,
        metadata=_doc(
            "Seconds a client has to send a request's headers, and an idle kept-alive "
            "connection stays open."
        ),
    )
    web_max_connections: int = field(
        default=1000, metadata=_doc("Most HTTP connections open at once; more are closed.")
    )
    data_dir: Path = field(
        default=Path("./data"), metadata=_doc("Folder for the RocksDB table state.")
    )
    app_id: str = field(
        default="streamagg",
        metadata=_doc("App id: consumer groups, transactional ids, internal topics, state folder."),
    )
    topic: str = field(default="cdr-events", metadata=_doc("Topic the CDRs arrive on."))
    dlq_topic: str = field(
        default="cdr-events-dlq", metadata=_doc("Dead-letter topic for rejected CDRs.")
    )
    dids_topic: str = field(
        default="streamagg-dids", metadata=_doc("Compacted topic of the DID inventory.")
    )
    partitions: int = field(
        default=8,
        metadata=_doc("Partitions of the internal topics (CDR batches, changelogs)."),
    )
    replication_factor: int = field(
        default=3,
        metadata=_doc(
            "Replication factor of the topics streamagg creates (internal, DLQ, changelogs); "
            "capped at the number of brokers."
        ),
    )
    standby_replicas: int = field(
        default=1, metadata=_doc("Standby copies of each table partition on other workers.")
    )
    tokens_file: Path | None = field(
        default=None,
        metadata=_doc("JSON file of API token hashes; unset means the API refuses every call."),
    )
    ratecenters: str = field(
        default="",
        metadata=_doc("Rate-center files or folders, separated by `:`; reloaded when changed."),
    )
    ratecenters_check_seconds: int = field(
        default=30,
        metadata=_doc("Seconds between checks of the rate-center files (and the tokens file)."),
    )
    retention_days: int = field(
        default=400,
        metadata=_doc(
            "Days of report buckets kept; older ones are deleted. A longer value applies at once, "
            "a shorter one once it has been set for a day (a typo deletes nothing)."
        ),
    )
    dedup_hours: int = field(
        default=48, metadata=_doc("Event-time horizon of duplicate detection, in hours.")
    )
    future_tolerance_hours: int = field(
        default=24,
        metadata=_doc("CDRs dated further than this into the future are rejected."),
    )
    ingest_mode: str = field(
        default="auto",
        metadata=_doc(
            "Where the ingest stage runs: `process` (a child process: a worker uses two cores), "
            "`inline` (in the worker's own process), or `auto`: `process` on a machine with two "
            "or more CPUs, else `inline`."
        ),
    )
    ingest_linger_ms: int = field(
        default=50,
        metadata=_doc(
            "How long the ingest stage waits for more CDRs when a poll came back small "
            "(bigger batches cost the report stage less; adds at most this to freshness). "
            "At half load, 200 costs ~25 % less CPU per CDR than 50, and doubles the median "
            "freshness (BENCHMARKS.md)."
        ),
    )
    ingest_max_records: int = field(
        default=20000, metadata=_doc("Most CDR messages the ingest stage reads per poll.")
    )
    batch_max_cdrs: int = field(
        default=4000, metadata=_doc("Most CDRs packed into one internal batch message.")
    )
    column_sums_from: int = field(
        default=COLUMN_SUMS_FROM,
        metadata=_doc(
            "Records (calls, duplicates included) of a state transaction from which its report "
            "sums are computed on columns (Polars group-bys) instead of call by call: the same "
            "sums, cheaper per call for a backlog or a backfill; below it Polars' fixed cost "
            "per step outweighs the saving (`python -m bench.column_sums` measures both on "
            "this machine). 0: always. A report whose sums could pass 64 bits in a transaction "
            "is summed call by call whatever this says."
        ),
    )
    metrics_max_prefixes: int = field(
        default=1000,
        metadata=_doc(
            "Most tech prefixes a worker exports as metric labels; calls of further prefixes "
            "are counted under `__other__` (the reports are not affected)."
        ),
    )
    unknown_batch_log: str = field(
        default="stop",
        metadata=_doc(
            "What a partition does when the batch topic does not hold the last batch its state "
            "applied (the topic deleted and created again, or a copy on another cluster that "
            "is behind the state's changelog): `stop` (it waits, and says why), `from-end` "
            "(every batch in the topic was applied already: continue after them), `from-start` "
            "(none was: apply them all). Set for the one restart that needs it "
            "(docs/operations.md)."
        ),
    )
    log_level: str = field(default="info", metadata=_doc("Log level of the worker."))
    security_protocol: str = field(
        default="PLAINTEXT",
        metadata=_doc("Kafka security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."),
    )
    sasl_mechanism: str = field(
        default="", metadata=_doc("SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.")
    )
    sasl_username: str = field(default="", metadata=_doc("SASL user name."))
    sasl_password: str = field(default="", metadata=_doc("SASL password.", secret=True))
    ssl_cafile: Path | None = field(
        default=None, metadata=_doc("CA bundle that signs the brokers' certificates.")
    )
    ssl_certfile: Path | None = field(
        default=None, metadata=_doc("Client certificate for mutual TLS.")
    )
    ssl_keyfile: Path | None = field(default=None, metadata=_doc("Client key for mutual TLS."))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build the settings from ``STREAMAGG_*`` variables, naming any bad one."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            name = _PREFIX + f.name.upper()
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(name, str(f.type), raw)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise SettingsError naming the first variable whose value cannot work."""
        self._validate_numbers()
        self._validate_choices()
        self._validate_kafka()

    def _validate_numbers(self) -> None:
        # Upper bounds where a larger value cannot work: past them dates leave the calendar (a
        # 800,000-day retention made every query a 500), sleeps overflow the event loop's timer,
        # a topic gets more partitions than a cluster holds. Typos of a digit stay inside.
        for name, (low, high) in NUMBER_RANGES.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise SettingsError(
                    f"{env_name(name)}={value} is out of range: from {low:,} to {high:,}"
                )

    def _validate_choices(self) -> None:
        if (self.web_tls_certfile is None) != (self.web_tls_keyfile is None):
            raise SettingsError(
                f"{env_name('web_tls_certfile')} and {env_name('web_tls_keyfile')} go together"
            )
        if self.web_access_log not in ("on", "off"):
            raise SettingsError(f"{env_name('web_access_log')} must be on or off")
        if self.ingest_mode not in ("auto", "process", "inline"):
            raise SettingsError(f"{env_name('ingest_mode')} must be auto, process or inline")
        if self.unknown_batch_log not in ("stop", "from-end", "from-start"):
            raise SettingsError(
                f"{env_name('unknown_batch_log')} must be stop, from-end or from-start"
            )
        if self.log_level.upper() not in _LOG_LEVELS:
            raise SettingsError(
                f"{env_name('log_level')} must be one of {', '.join(sorted(_LOG_LEVELS)).lower()}"
            )

    def _validate_kafka(self) -> None:
        if not self.broker_hosts:
            raise SettingsError(f"{env_name('broker')} names no host:port")
        protocols = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
        if self.security_protocol not in protocols:
            raise SettingsError(
                f"{env_name('security_protocol')} must be one of {', '.join(sorted(protocols))}"
            )
        if self.security_protocol.startswith("SASL") and not self.sasl_mechanism:
            raise SettingsError(f"{env_name('sasl_mechanism')} is required with SASL")

    @property
    def broker_hosts(self) -> list[str]:
        """Bootstrap servers as ``host:port`` strings, without the URL scheme."""
        hosts = []
        for part in self.broker.replace(",", ";").split(";"):
            host = part.strip()
            if "://" in host:
                host = host.split("://", 1)[1]
            if host:
                hosts.append(host)
        return hosts

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(self.broker_hosts)

    @property
    def batches_topic(self) -> str:
        """Internal topic of per-customer CDR batches, partitioned by customer."""
        return f"{self.app_id}-cdr-batches"

    @property
    def ingest_in_child_process(self) -> bool:
        """Whether the ingest stage runs in a child process (STREAMAGG_INGEST_MODE resolved)."""
        if self.ingest_mode == "auto":
            return (os.cpu_count() or 1) >= 2
        return self.ingest_mode == "process"

    @property
    def changelog_topic(self) -> str:
        """Compacted changelog of the report state, one partition per batch partition."""
        return f"{self.app_id}-state-changelog"

    @property
    def canonical_url(self) -> str:
        """How other workers reach this one (forwarded requests, the owner map)."""
        scheme = "https" if self.web_tls_certfile is not None else "http"
        return f"{scheme}://{self.web_host}:{self.web_port}"

    def kafka_client_options(self) -> dict[str, object]:
        """Security options for every aiokafka client streamagg creates."""
        options: dict[str, object] = {"security_protocol": self.security_protocol}
        if self.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context(
                cafile=str(self.ssl_cafile) if self.ssl_cafile else None,
                certfile=str(self.ssl_certfile) if self.ssl_certfile else None,
                keyfile=str(self.ssl_keyfile) if self.ssl_keyfile else None,
            )
        if self.security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value:
                value = "***"
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"


def env_name(field_name: str) -> str:
    return _PREFIX + field_name.upper()


def _parse(name: str, type_name: str, raw: str) -> object:
    if type_name == "int":
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if "Path" in type_name:
        return Path(raw)
    return raw

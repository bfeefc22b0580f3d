"""The Faust app of a worker and the runtime objects its stages and web views share.

Faust runs the worker: its lifecycle and signals, the aiohttp web server, Prometheus sensors.
The CDR path does not go through Faust's consumer, agents or tables: the ingest stage and the
state layer (streamagg/tables/) own their Kafka clients, because exactly-once across crashes
needs transactions, fencing and recovery that this code can state and test as invariants
(docs/exactly-once.md) — Faust's table layer lost committed data after SIGKILLs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import faust
from faust.app.base import BootStrategy
from faust.web.drivers.aiohttp import Web as AiohttpWeb
from prometheus_client import CollectorRegistry

from streamagg.agents.aggregate import ReportAgent
from streamagg.agents.ingest_modes import Ingest, create_ingest
from streamagg.gc_tuning import tune_collector
from streamagg.log_limits import limit_repeats, report_held_repeats
from streamagg.metrics import Metrics, create_metrics
from streamagg.reference.ratecenters import RateCenterSource
from streamagg.reports import REPORTS
from streamagg.settings import Settings
from streamagg.tables.retention import RetentionSweeper
from streamagg.tables.state import StateLayer
from streamagg.web.auth import TokenStore
from streamagg.web.server import make_runner, server_tls

log = logging.getLogger(__name__)

LOOP_PROBE_S = 0.5  # how often the event loop's lag is measured


class StreamaggWeb(AiohttpWeb):
    """Faust's aiohttp server without its built-in pages (/table would dump table contents),
    with streamagg's runner (limits on slow and many clients: web/server.py)."""

    default_blueprints: ClassVar[Any] = ()
    production_blueprints: ClassVar[Any] = ()
    debug_blueprints: ClassVar[Any] = ()
    optional_blueprints: ClassVar[Any] = ()

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._runner = make_runner(self.web_app, app.settings)


class WebOnlyBoot(BootStrategy):
    """Faust starts its web server, sensors and app tasks, and no Kafka client of its own."""

    enable_kafka = False
    enable_web = True


@dataclass
class Runtime:
    """Everything a worker holds besides Faust itself, shared by agents and web views."""

    settings: Settings
    registry: CollectorRegistry
    metrics: Metrics
    state: StateLayer
    rate_centers: RateCenterSource
    tokens: TokenStore
    ingest: Ingest
    background: list[asyncio.Task[None]] = field(default_factory=list)

    def readiness(self, app: faust.App) -> tuple[bool, str]:
        """Whether this worker answers queries with complete data, and if not, why."""
        if not self.ingest.inventory_loaded:
            return False, "loading the DID inventory"
        if not self.ingest.running.is_set():
            return False, "the ingest stage is not connected to Kafka"
        return self.state.readiness()


class StreamaggApp(faust.App):
    runtime: Runtime
    settings: Settings
    BootStrategy = WebOnlyBoot

    def _new_web(self) -> Any:
        return StreamaggWeb(self)

    async def on_stop(self) -> None:
        runtime = getattr(self, "runtime", None)
        if runtime is not None:
            await _stop_side_services(runtime)
        await super().on_stop()

    def on_webserver_init(self, web: Any) -> None:
        from streamagg.web.routes import install_routes

        install_routes(web.web_app, self)


def create_app(
    settings: Settings,
    registry: CollectorRegistry | None = None,
    replication_factor: int | None = None,
) -> StreamaggApp:
    """Build the worker's Faust app: the ingest stage, the state layer with its report agent,
    and the web."""
    registry = registry or CollectorRegistry()
    app = StreamaggApp(
        settings.app_id,
        broker=settings.broker,
        datadir=str(settings.data_dir),
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        web_host=settings.web_host,
        canonical_url=settings.canonical_url,
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_ssl_context=server_tls(settings),
        autodiscover=False,
    )
    app.settings = settings
    metrics = create_metrics(registry, settings.metrics_max_prefixes)
    horizon = settings.dedup_hours * 3600
    state = StateLayer(
        settings,
        metrics,
        ReportAgent(metrics, horizon, settings.dlq_topic, settings.column_sums_from),
        RetentionSweeper(REPORTS, settings.retention_days, horizon),
    )
    app.runtime = Runtime(
        settings=settings,
        registry=registry,
        metrics=metrics,
        state=state,
        rate_centers=RateCenterSource(settings.ratecenters, log=log),
        tokens=TokenStore(
            settings.tokens_file,
            on_validity=lambda valid: metrics.tokens_file_valid.set(1 if valid else 0),
        ),
        ingest=create_ingest(settings, metrics),
    )
    metrics.tokens_file_valid.set(1 if app.runtime.tokens.valid else 0)

    async def start_side_services() -> None:
        await _start_side_services(app.runtime)

    app.task(start_side_services)
    return app


async def _start_side_services(runtime: Runtime) -> None:
    tune_collector()  # (Faust's services and the web app are built by now)
    repeats = limit_repeats("aiokafka")  # (its modules are imported by now)
    runtime.background.append(asyncio.create_task(report_held_repeats(repeats)))
    runtime.background.append(asyncio.create_task(runtime.state.run()))
    runtime.background.append(asyncio.create_task(runtime.ingest.run()))
    runtime.background.append(asyncio.create_task(watch_reference_files(runtime)))
    runtime.background.append(asyncio.create_task(watch_event_loop(runtime.metrics)))


async def watch_event_loop(metrics: Metrics, every: float = LOOP_PROBE_S) -> None:
    """Observe how late a timer fires: the longest time one step held the loop meanwhile."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(every)
        metrics.event_loop_lag.observe(max(0.0, loop.time() - started - every))


async def watch_reference_files(runtime: Runtime) -> None:
    """Reload the rate-center files and the tokens file when they change. Each keeps its last
    good data through a failed load; an unexpected error in one (a bug) is logged and must not
    end the watching, or a token revoked in the tokens file would stay valid until a restart."""
    while True:
        try:
            await asyncio.to_thread(runtime.rate_centers.maybe_reload)
        except Exception:
            log.exception("rate centers: the reload failed; the data loaded before stays in use")
        try:
            runtime.tokens.maybe_reload()
        except Exception:
            log.exception("tokens file: the reload failed; the tokens loaded before stay in use")
        await asyncio.sleep(runtime.settings.ratecenters_check_seconds)


async def _stop_side_services(runtime: Runtime) -> None:
    runtime.state.stop()
    await runtime.ingest.stop()
    for task in runtime.background:
        task.cancel()
    await asyncio.gather(*runtime.background, return_exceptions=True)
    await runtime.state.close()


def _credentials(settings: Settings) -> Any:
    if settings.security_protocol == "PLAINTEXT":
        return None
    ssl_context: Any = settings.kafka_client_options().get("ssl_context")
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password,
            mechanism=settings.sasl_mechanism,
            ssl_context=ssl_context,
        )
    return faust.SSLCredentials(ssl_context)

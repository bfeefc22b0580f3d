"""`streamagg worker`: wait for Kafka, then run the Faust worker of the app."""

from __future__ import annotations

import asyncio
import logging

import faust

from streamagg.cli.worker_checks import (
    check_port_free,
    claim_state_folder,
    forget_copies_of_another_cluster,
)
from streamagg.settings import Settings
from streamagg.topics import cluster_id, wait_for_broker

log = logging.getLogger("streamagg")


def run_worker(settings: Settings) -> int:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log.info("settings: %r", settings)
    check_port_free(settings)
    state_lock = claim_state_folder(settings)  # (held, open, for the process's life)
    try:
        replication = asyncio.run(wait_for_broker(settings))
        cluster = asyncio.run(cluster_id(settings))
    except KeyboardInterrupt:
        return 130
    forgotten = forget_copies_of_another_cluster(settings, cluster)
    if forgotten:
        log.warning(
            "the local state copies were made from another Kafka cluster's changelog (not %s): "
            "deleted %s; they are rebuilt from this cluster's changelog",
            cluster,
            ", ".join(forgotten),
        )

    from streamagg.app import create_app

    app = create_app(settings, replication_factor=replication)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
    state_lock.close()
    return 0

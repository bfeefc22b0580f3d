"""What a worker checks of its machine before it joins anything: its state folder is its own
and writable, its HTTP port is free. Each failure is one line naming the setting (exit 2),
not a traceback from deep inside the start-up, and never a worker that joins its group only
to hold partitions it cannot open."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
from pathlib import Path
from typing import IO

from streamagg.errors import SettingsError
from streamagg.settings import Settings, env_name

LOCK_NAME = "worker.lock"
CLUSTER_NAME = "cluster-id"


def claim_state_folder(settings: Settings) -> IO[str]:
    """Create the app's state folder and lock it for this process; the returned file holds
    the lock for as long as it stays open (the process's life: the lock goes with it, even
    after SIGKILL). A second worker of the same app on the same folder would fight the first
    over every partition's RocksDB copy: it is refused."""
    folder = settings.data_dir / "state" / settings.app_id
    variable = f"{env_name('data_dir')}={settings.data_dir}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = (folder / LOCK_NAME).open("a+", encoding="utf-8")
    except OSError as exc:
        raise SettingsError(
            f"{variable}: cannot use {_failed_path(exc, folder)} as the state folder "
            f"({exc.strerror}); give the worker a folder it can write"
        ) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise SettingsError(
            f"{variable}: the state folder {folder} is in use by another worker of "
            f"{settings.app_id} ({holder}); give each worker its own folder"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}\n")
    lock.flush()
    return lock


def check_port_free(settings: Settings) -> None:
    """Raise SettingsError when the HTTP address is taken (another worker, another program)."""
    try:
        infos = socket.getaddrinfo(
            settings.web_bind, settings.web_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        raise SettingsError(f"{env_name('web_bind')}={settings.web_bind}: {exc}") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise SettingsError(
                f"{env_name('web_port')}={settings.web_port}: cannot listen on "
                f"{settings.web_bind}:{settings.web_port} ({exc.strerror})"
            ) from None


def _failed_path(exc: OSError, folder: Path) -> str:
    return str(exc.filename) if exc.filename else str(folder)


def forget_copies_of_another_cluster(settings: Settings, cluster_id: str | None) -> list[str]:
    """Delete the partitions' local copies when they were made from another Kafka cluster's
    changelog; returns the folders deleted. A copy's position is an offset of the changelog it
    was made from: against another cluster's copy of that changelog (a MirrorMaker failover,
    workers that kept their disks), whose offsets differ, the copy would go on from the wrong
    record. The cluster's id is written next to the copies; a folder without one (first start,
    or an older version's) is taken as this cluster's."""
    folder = settings.data_dir / "state" / settings.app_id
    if cluster_id is None:
        return []  # (the broker did not say: nothing to compare, nothing written)
    marker = folder / CLUSTER_NAME
    known = marker.read_text(encoding="utf-8").strip() if marker.is_file() else cluster_id
    deleted = []
    if known != cluster_id:
        for copy in sorted(folder.glob("partition-*")):
            shutil.rmtree(copy, ignore_errors=True)
            deleted.append(copy.name)
    marker.write_text(cluster_id + "\n", encoding="utf-8")
    return deleted

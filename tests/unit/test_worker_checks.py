"""A worker's checks of its machine before it starts: one line naming the setting each."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from streamagg.cli.worker_checks import (
    check_port_free,
    claim_state_folder,
    forget_copies_of_another_cluster,
)
from streamagg.errors import SettingsError
from streamagg.settings import Settings


def test_a_second_worker_of_the_app_on_the_same_state_folder_is_refused(tmp_path: Path) -> None:
    """(It joined the group, failed to open the first one's RocksDB copies and held its
    partitions for good, while the first said ready and could not answer for them.)"""
    settings = Settings(data_dir=tmp_path, app_id="app")
    first = claim_state_folder(settings)
    try:
        with pytest.raises(SettingsError) as refused:
            claim_state_folder(settings)
        assert f"STREAMAGG_DATA_DIR={tmp_path}: the state folder" in str(refused.value)
        assert "in use by another worker of app (pid " in str(refused.value)
        # Another app in the same folder has a state folder of its own.
        claim_state_folder(Settings(data_dir=tmp_path, app_id="other")).close()
    finally:
        first.close()
    claim_state_folder(settings).close()  # (the first one gone, the folder is free again)


@pytest.mark.parametrize("where", ["under-a-file", "a-file"])
def test_a_state_folder_that_cannot_be_made_is_one_line(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    data_dir = blocker / "data" if where == "under-a-file" else blocker
    with pytest.raises(SettingsError) as refused:
        claim_state_folder(Settings(data_dir=data_dir, app_id="app"))
    message = str(refused.value)
    assert message.startswith(f"STREAMAGG_DATA_DIR={data_dir}: cannot use ")
    assert "give the worker a folder it can write" in message


def test_a_taken_http_port_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SettingsError) as refused:
            check_port_free(Settings(web_bind="127.0.0.1", web_port=port))
    assert str(refused.value).startswith(f"STREAMAGG_WEB_PORT={port}: cannot listen on 127.0.0.1")
    check_port_free(Settings(web_bind="127.0.0.1", web_port=port))  # (free again)


def test_copies_made_from_another_clusters_changelog_are_deleted(tmp_path: Path) -> None:
    """A copy's position is an offset of the changelog it was made from; another cluster's
    copy of that changelog (a MirrorMaker failover onto workers that kept their disks) has
    other offsets, so the copies are rebuilt instead of going on from a wrong record."""
    settings = Settings(data_dir=tmp_path, app_id="app")
    folder = tmp_path / "state" / "app"
    for partition in (0, 3):
        (folder / f"partition-{partition}").mkdir(parents=True)
        (folder / f"partition-{partition}" / "CURRENT").write_text("x")

    assert forget_copies_of_another_cluster(settings, "cluster-a") == []  # first start: kept
    assert forget_copies_of_another_cluster(settings, "cluster-a") == []  # same cluster
    assert forget_copies_of_another_cluster(settings, None) == []  # broker did not say
    assert sorted(p.name for p in folder.glob("partition-*")) == ["partition-0", "partition-3"]

    assert forget_copies_of_another_cluster(settings, "cluster-b") == ["partition-0", "partition-3"]
    assert list(folder.glob("partition-*")) == []
    assert (folder / "cluster-id").read_text().strip() == "cluster-b"

"""kafka-local's fast failure paths: clear one-line messages, right exit codes, no JVM started."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from tests.support.common import BROKER_VARS

KAFKA_LOCAL = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "kafka-local"
# Never inherited: they may name a real broker (a developer's, CI's) that tests must not touch.


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(KAFKA_LOCAL), *args],
        cwd=cwd,
        env={**{k: v for k, v in os.environ.items() if k not in BROKER_VARS}, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def path_without(tmp_path: Path, *missing: str) -> Path:
    """A bin folder with the system's commands except `missing` (to put alone on PATH)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for system_dir in ("/usr/local/bin", "/usr/bin", "/bin"):
        for tool in Path(system_dir).iterdir():
            link = bin_dir / tool.name
            if tool.name not in missing and not link.exists() and os.access(tool, os.X_OK):
                link.symlink_to(tool)
    return bin_dir


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_status_without_a_broker_exits_3(tmp_path: Path) -> None:
    result = run("status", cwd=tmp_path, KAFKA_DIR="nothing-here")

    assert result.returncode == 3
    assert "not running" in result.stdout
    assert str(tmp_path / "nothing-here") in result.stdout
    assert not (tmp_path / "nothing-here").exists()  # status does not create KAFKA_DIR


def test_stop_without_a_broker_is_a_no_op(tmp_path: Path) -> None:
    result = run("stop", cwd=tmp_path)

    assert result.returncode == 0
    assert "not running" in result.stdout


def test_start_refuses_a_port_taken_by_another_process(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = run("start", cwd=tmp_path, KAFKA_PORT=str(port))

    assert f"port {port} is already taken" in one_error_line(result)
    assert not (tmp_path / ".kafka" / "kafka.pid").exists()


def test_unknown_command_prints_usage(tmp_path: Path) -> None:
    result = run("restart", cwd=tmp_path)

    assert result.returncode == 2
    assert "usage: kafka-local start|stop|status|fetch" in result.stderr


def test_missing_java_is_one_clear_line(tmp_path: Path) -> None:
    result = run("start", cwd=tmp_path, PATH=str(path_without(tmp_path, "java")))

    assert one_error_line(result).startswith("kafka-local: error: java not found")


def test_old_java_is_refused(tmp_path: Path) -> None:
    bin_dir = path_without(tmp_path, "java")
    fake_java = bin_dir / "java"
    fake_java.write_text("#!/bin/sh\necho 'openjdk version \"1.8.0_392\"' >&2\n")
    fake_java.chmod(0o755)

    result = run("start", cwd=tmp_path, PATH=str(bin_dir))

    assert "Java 8 is too old" in one_error_line(result)


def test_missing_maven_is_one_clear_line_when_jars_are_absent(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]

    result = run(
        "start",
        cwd=tmp_path,
        PATH=str(path_without(tmp_path, "mvn")),
        KAFKA_JARS=str(tmp_path / "no-jars-yet"),
        KAFKA_PORT=str(free_port),
    )

    assert one_error_line(result).startswith("kafka-local: error: mvn not found")


def test_failed_jar_fetch_is_one_clear_line_and_leaves_no_partial_cache(tmp_path: Path) -> None:
    bin_dir = path_without(tmp_path, "mvn")
    fake_mvn = bin_dir / "mvn"
    fake_mvn.write_text("#!/bin/sh\necho 'Could not resolve dependencies' >&2\nexit 1\n")
    fake_mvn.chmod(0o755)
    cache = tmp_path / "cache" / "kafka"

    result = run("fetch", cwd=tmp_path, PATH=str(bin_dir), KAFKA_JARS=str(cache))

    line = one_error_line(result)
    assert "fetching the Kafka jars with Maven failed; see " in line
    log = Path(line.rsplit("see ", 1)[1])
    assert "Could not resolve dependencies" in log.read_text()
    assert not cache.exists()
    assert [p.name for p in cache.parent.iterdir()] == [log.name]

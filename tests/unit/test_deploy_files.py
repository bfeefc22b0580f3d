"""The container deployment: Dockerfile, .dockerignore, deploy/docker-compose.yml and its mounts."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamagg.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS_COMPOSE = DEPLOY / "prometheus" / "prometheus-compose.yml"
SERVICES = {"kafka", "worker1", "worker2", "prometheus", "grafana", "demo"}
WORKERS = ("worker1", "worker2")
SETTING_NAMES = {env_name(f.name) for f in fields(Settings)}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "NAME=value" form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume entry, short syntax, without the :ro/:rw mode."""
    result = []
    for entry in service.get("volumes", ()):
        if isinstance(entry, dict):
            result.append((entry["source"], entry["target"]))
        else:
            source, target, *_ = entry.split(":")
            result.append((source, target))
    return result


def host_ports(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host ip, host port) of each published port ("[ip:]host:container[/proto]")."""
    result = []
    for entry in service.get("ports", ()):
        parts = str(entry).split("/")[0].split(":")
        assert len(parts) in (2, 3), f"publish a fixed host port, not {entry!r}"
        ip = parts[0] if len(parts) == 3 else "0.0.0.0"
        result.append((ip, int(parts[-2])))
    return result


def test_every_service_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == SERVICES
    assert services["demo"].get("profiles") == ["demo"]
    for name in SERVICES - {"demo"}:
        assert not services[name].get("profiles"), f"{name} must start without a profile"


def test_images_are_official_names_without_a_registry_host(
    services: dict[str, dict[str, Any]],
) -> None:
    expected = {"kafka": "apache/kafka:", "prometheus": "prom/prometheus:"}
    expected["grafana"] = "grafana/grafana:"
    for name, prefix in expected.items():
        assert services[name]["image"].startswith(prefix)
    for name, service in services.items():
        image = service.get("image", "")
        if "/" in image:  # "host[:port]/..." would name a registry: a dot, a port or localhost
            first = image.split("/")[0]
            assert "." not in first and ":" not in first and first != "localhost", (
                f"{name}: {image} names a registry host"
            )


def test_kafka_is_a_single_kraft_node(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    # A KRaft cluster id: 16 bytes in URL-safe base64 without padding.
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])


def test_streamagg_variables_are_settings(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for variable in environment(service):
            if variable.startswith("STREAMAGG_"):
                assert variable in SETTING_NAMES, f"{name}: {variable} is no setting"
    for line in DOCKERFILE.read_text().splitlines():
        for variable in re.findall(r"\b(STREAMAGG_[A-Z_]+)=", line):
            assert variable in SETTING_NAMES, f"Dockerfile: {variable} is no setting"


def test_workers_form_one_group_and_forward_to_each_other(
    services: dict[str, dict[str, Any]],
) -> None:
    settings = {name: Settings.from_env(environment(services[name])) for name in WORKERS}
    for name, worker in settings.items():
        assert worker.web_host == name  # the service name other workers can resolve
        assert worker.broker_hosts == ["kafka:9092"]
    first, second = settings.values()
    for shared in ("app_id", "topic", "dlq_topic", "dids_topic", "partitions"):
        assert getattr(first, shared) == getattr(second, shared), shared
    assert first.tokens_file is not None


def test_workers_are_built_from_the_dockerfile_with_own_state(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    data_volumes = []
    for name in WORKERS:
        service = services[name]
        build = service["build"]
        assert (COMPOSE.parent / build["context"]).resolve() == ROOT
        assert (ROOT / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
        env = environment(service)
        targets = {target: source for source, target in mounts(service)}
        data = targets[env["STREAMAGG_DATA_DIR"]]
        assert data in compose["volumes"], f"{name}: data dir on a named volume"
        data_volumes.append(data)
        tokens = targets[env["STREAMAGG_TOKENS_FILE"]]
        assert (COMPOSE.parent / tokens).is_file()
    assert len(set(data_volumes)) == len(data_volumes), "each worker has its own data volume"


def test_mounted_files_exist_and_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    checked = 0
    for name, service in services.items():
        for source, target in mounts(service):
            if source.startswith((".", "/")):
                path = (COMPOSE.parent / source).resolve()
                assert path.exists(), f"{name}: {source} (-> {target}) is not in the repository"
                assert ROOT in path.parents, f"{name}: {source} is outside the repository"
                checked += 1
            else:
                assert source in compose["volumes"], f"{name}: volume {source} not declared"
    assert checked >= 8


def test_prometheus_gets_its_rules_next_to_the_config(
    services: dict[str, dict[str, Any]],
) -> None:
    targets = {target: source for source, target in mounts(services["prometheus"])}
    assert targets["/etc/prometheus/prometheus.yml"] == "./prometheus/prometheus-compose.yml"
    config = yaml.safe_load(PROMETHEUS_COMPOSE.read_text())
    for rule_file in config["rule_files"]:
        assert f"/etc/prometheus/{rule_file}" in targets
        assert (PROMETHEUS_COMPOSE.parent / rule_file).is_file()


def test_prometheus_scrapes_both_workers(services: dict[str, dict[str, Any]]) -> None:
    config = yaml.safe_load(PROMETHEUS_COMPOSE.read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "streamagg"]
    scraped = {target for group in job["static_configs"] for target in group["targets"]}
    expected = {
        f"{name}:{Settings.from_env(environment(services[name])).web_port}" for name in WORKERS
    }
    assert scraped == expected


def test_prometheus_compose_config_is_valid(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_gets_the_dashboard_and_a_data_source_on_the_network(
    services: dict[str, dict[str, Any]],
) -> None:
    targets = {target: source for source, target in mounts(services["grafana"])}
    provider_dir = COMPOSE.parent / targets["/etc/grafana/provisioning/dashboards"]
    (provider,) = yaml.safe_load((provider_dir / "streamagg.yml").read_text())["providers"]
    dashboards = COMPOSE.parent / targets[provider["options"]["path"]]
    assert (dashboards / "streamagg.json").is_file()
    datasource_dir = COMPOSE.parent / targets["/etc/grafana/provisioning/datasources"]
    sources = [
        source
        for path in sorted(datasource_dir.glob("*.yml"))
        for source in yaml.safe_load(path.read_text())["datasources"]
    ]
    assert [s["url"] for s in sources if s["type"] == "prometheus"] == ["http://prometheus:9090"]
    assert "9090:9090" in " ".join(str(p) for p in services["prometheus"]["ports"])


def test_published_ports_do_not_clash(services: dict[str, dict[str, Any]]) -> None:
    published = [(port, name) for name, s in services.items() for _, port in host_ports(s)]
    ports = [port for port, _ in published]
    assert len(ports) == len(set(ports)), sorted(published)
    assert {6066, 6067} <= set(ports)


def test_demo_runs_the_generator_with_the_worker_settings(
    services: dict[str, dict[str, Any]],
) -> None:
    demo = services["demo"]
    command = " ".join(demo["command"]) if isinstance(demo["command"], list) else demo["command"]
    assert "streamagg generate" in command
    assert "--rate 200" in command
    shared = ("STREAMAGG_BROKER", "STREAMAGG_TOPIC", "STREAMAGG_DIDS_TOPIC")
    for variable in shared:
        assert environment(demo)[variable] == environment(services["worker1"])[variable]


def test_dockerfile_runs_the_worker_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    froms = [line.split()[1] for line in instructions if line.startswith("FROM ")]
    assert froms and all(image == "python:3.11-slim" for image in froms)
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert "pip install ." in text
    assert 'ENTRYPOINT ["streamagg"]' in text
    assert 'CMD ["worker"]' in text
    assert re.search(r"^EXPOSE 6066$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\\\n\s+CMD \[\"streamagg\", \"check\"", text, re.M)
    data_dir = re.search(r"STREAMAGG_DATA_DIR=(\S+)", text)
    assert data_dir is not None
    assert f'VOLUME ["{data_dir.group(1)}"]' in text


def test_dockerignore_keeps_the_package_in_the_build_context() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in ("streamagg", "pyproject.toml", "README.md"):
        assert needed not in ignored
    for excluded in (".git", ".venv", ".data", "tests"):
        assert excluded in ignored


def test_docker_compose_accepts_the_file() -> None:
    """`docker compose config` (or docker-compose) when one is installed; no engine needed."""
    commands = []
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        ).returncode
        == 0
    ):
        commands.append([docker, "compose"])
    if shutil.which("docker-compose"):
        commands.append(["docker-compose"])
    if not commands:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    for command in commands:
        result = subprocess.run(
            [*command, "-f", str(COMPOSE), "--profile", "demo", "config", "--services"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert set(result.stdout.split()) == SERVICES


def test_operations_doc_links_resolve() -> None:
    doc = ROOT / "docs" / "operations.md"
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text())
    local = [link for link in links if "://" not in link]
    assert local
    for link in local:
        target = (doc.parent / link).resolve()
        if ROOT in target.parents:  # the SPEC lies beside the repository, not in it
            assert target.exists(), f"docs/operations.md links to missing {link}"
    assert "(docs/operations.md)" in (ROOT / "README.md").read_text()

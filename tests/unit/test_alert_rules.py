"""The Prometheus config, recording rules and alerts in deploy/prometheus, checked by promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "rules.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
ALERTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"


@pytest.fixture(scope="module")
def promtool() -> str:
    """Path of the promtool binary; the tests fail (not skip) without it."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found on PATH: the alert rules cannot be checked. "
            "It ships with Debian's `prometheus` package: apt-get install -y prometheus",
            pytrace=False,
        )
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    )


def alert_names() -> list[str]:
    return re.findall(r"^\s*- alert:\s*(\S+)\s*$", ALERTS.read_text(), flags=re.M)


def test_config_is_valid_and_loads_both_rule_files(promtool: str) -> None:
    result = run(promtool, "check", "config", str(CONFIG))
    assert_ok(result)
    # check config also parses the rule files it loads; make sure it found both.
    assert "SUCCESS: 2 rule files found" in result.stdout


def test_file_sd_variant_in_the_comments_is_valid(promtool: str, tmp_path: Path) -> None:
    """Swapping static_configs for the commented file_sd_configs block gives a valid config."""
    lines = CONFIG.read_text().splitlines()
    start = lines.index("    static_configs:")
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("      "))
    sd_start = lines.index("    # file_sd_configs:")
    sd_block = []
    for line in lines[sd_start:]:
        if not line.startswith("    #"):
            break
        sd_block.append("    " + line[len("    # ") :])
    variant = lines[:start] + lines[end:sd_start] + sd_block + lines[sd_start + len(sd_block) :]
    for name in ("rules.yml", "alerts.yml"):
        shutil.copy(PROMETHEUS_DIR / name, tmp_path / name)
    config = tmp_path / "prometheus.yml"
    config.write_text("\n".join(variant) + "\n")

    result = run(promtool, "check", "config", str(config))
    assert_ok(result)
    assert "file_sd_configs:" in config.read_text()
    assert "static_configs:\n      - targets:\n          - localhost:6066" not in config.read_text()


def test_rule_files_are_valid(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES), str(ALERTS))
    assert_ok(result)


def test_alert_unit_tests_pass(promtool: str) -> None:
    assert_ok(run(promtool, "test", "rules", str(ALERTS_TEST)))


def test_every_alert_is_tested_both_firing_and_not_firing() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    lines = ALERTS_TEST.read_text().splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^\s*alertname:\s*(\S+)\s*$", line)
        if match is None:
            continue
        following = lines[i + 1].strip()
        (quiet if following == "exp_alerts: []" else fired).add(match.group(1))
    names = alert_names()
    assert names, "no alert found in alerts.yml"
    assert set(names) <= fired, f"alerts never tested firing: {set(names) - fired}"
    assert set(names) <= quiet, f"alerts never tested staying quiet: {set(names) - quiet}"


def test_every_alert_has_severity_and_a_runbook_section() -> None:
    text = ALERTS.read_text()
    doc_headings = {
        re.sub(r"[^a-z0-9]", "", h.lower())
        for h in re.findall(r"^#+\s+(.+)$", ALERTS_DOC.read_text(), flags=re.M)
    }
    for name in alert_names():
        block = text.split(f"- alert: {name}\n", 1)[1].split("- alert:", 1)[0]
        assert re.search(r"severity: (critical|warning)", block), f"{name} has no severity"
        assert f"runbook: docs/alerts.md#{name.lower()}" in block, f"{name} has no runbook link"
        assert name.lower() in doc_headings, f"docs/alerts.md has no section for {name}"

"""deploy/prometheus and deploy/grafana: valid for promtool, and every series they read exists."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.settings import Settings
from tests.support.servers import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "convoforge.json"
_METRIC = re.compile(r"\bconvoforge_[a-z0-9_]+\b")
_KINDS = {"Counter", "Gauge", "Histogram", "Summary"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: `make test` installs it (Debian package prometheus)")
    return subprocess.run(
        [binary, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )


def test_promtool_accepts_the_config() -> None:
    result = _promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_rules() -> None:
    result = _promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_when_they_should() -> None:
    result = _promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_the_alerts_the_issue_asks_for() -> None:
    names = {rule["alert"] for rule in _rules()}
    assert {
        "ExportFailureRatioHigh", "QueueBacklogGrowing", "LLMErrorRatioHigh",
        "JanitorTaskNotRunning", "WorkerDown",
    } <= names  # fmt: skip
    for rule in _rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def test_every_service_is_scraped_by_its_compose_name_and_port() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    defaults = Settings()
    ports = {
        "api": defaults.api_port,
        "generator": defaults.generator_metrics_port,
        "exporter": defaults.exporter_metrics_port,
        "janitor": defaults.janitor_metrics_port,
    }
    for service, port in ports.items():
        discovery = jobs[service]["dns_sd_configs"][0]
        assert (discovery["names"], discovery["port"], discovery["type"]) == ([service], port, "A")


def _defined_series(*roots: Path) -> set[str]:
    """Every series name the code exposes (Counter → _total, Histogram → _bucket/_sum/_count)."""
    exposed: set[str] = set()
    for root in roots:
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                exposed |= _exposed_by(node)
    return exposed


def _exposed_by(node: ast.AST) -> set[str]:
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
        return set()
    kind = getattr(node.func, "id", getattr(node.func, "attr", ""))
    name = node.args[0].value
    if kind not in _KINDS or not isinstance(name, str) or not name.startswith("convoforge_"):
        return set()
    if kind == "Counter":
        return {name.removesuffix("_total") + "_total"}
    if kind in {"Histogram", "Summary"}:
        return {name, *(name + suffix for suffix in ("_bucket", "_sum", "_count"))}
    return {name}


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def test_every_series_read_by_alerts_and_dashboard_exists_in_the_code() -> None:
    defined = _defined_series(ROOT / "services", ROOT / "shared")
    exprs = [rule["expr"] for rule in _rules()] + _dashboard_exprs()
    used = {name for expr in exprs for name in _METRIC.findall(expr)}
    assert used, "no convoforge_ series found in the rules and dashboard"
    assert sorted(used - defined) == []


def test_dashboard_is_provisioned_against_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    source = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid
        assert panel["targets"], panel["title"]
    titles = " | ".join(panel["title"].lower() for panel in panels)
    for topic in ("api latency", "queue depth", "conversations generated", "cost",
                  "limiter wait", "export duration", "export file size", "janitor"):  # fmt: skip
        assert topic in titles, topic

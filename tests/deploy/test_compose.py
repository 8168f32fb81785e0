"""docker-compose.yml is valid and runs exactly the commands the local runner runs."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.support.servers import ROOT

APP_SERVICES = ("api", "generator", "exporter", "janitor")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as docker-compose resolves it."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is missing: `make test` installs it (deploy/local/services.sh)")
    check = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    resolved = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        check=True,
    )
    parsed: dict[str, Any] = yaml.safe_load(resolved.stdout)
    return parsed


def _procfile() -> dict[str, list[str]]:
    lines = (ROOT / "deploy" / "Procfile").read_text().splitlines()
    return {
        name.strip(): command.split()
        for name, command in (line.split(":", 1) for line in lines if line.strip())
    }


@pytest.mark.parametrize("service", APP_SERVICES)
def test_service_command_matches_local_runner(compose: dict[str, Any], service: str) -> None:
    assert compose["services"][service]["command"] == _procfile()[service]


@pytest.mark.parametrize(
    "service", [*APP_SERVICES, "postgres", "redis", "minio", "prometheus", "grafana"]
)
def test_long_running_services_have_healthchecks(compose: dict[str, Any], service: str) -> None:
    assert compose["services"][service]["healthcheck"]["test"]


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_wait_for_dependencies(compose: dict[str, Any], service: str) -> None:
    depends = compose["services"][service]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["convoforge", "migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_worker_probes_ask_readiness_on_the_default_metrics_ports(compose: dict[str, Any]) -> None:
    for service, port in (("generator", 9101), ("exporter", 9102), ("janitor", 9103)):
        probe = " ".join(compose["services"][service]["healthcheck"]["test"])
        assert f":{port}/readyz" in probe


@pytest.mark.parametrize(
    "service", [*APP_SERVICES, "postgres", "redis", "minio", "prometheus", "grafana"]
)
def test_long_running_services_restart(compose: dict[str, Any], service: str) -> None:
    assert compose["services"][service]["restart"] == "unless-stopped"


def test_redis_keeps_an_append_only_file_synced_every_second(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    local = (ROOT / "deploy" / "local" / "services.sh").read_text()
    assert "--appendonly yes --appendfsync everysec" in local


def _mounts(compose: dict[str, Any], service: str) -> dict[str, str]:
    """Container path → host path of a service's bind mounts (short or long syntax)."""
    mounts = {}
    for volume in compose["services"][service].get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        if source.startswith("/"):
            mounts[target] = source
    return mounts


def test_prometheus_runs_the_shipped_config(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    assert _mounts(compose, "prometheus")["/etc/prometheus"] == str(ROOT / "deploy" / "prometheus")
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert any(port["target"] == 9090 for port in prometheus["ports"])


def test_grafana_is_provisioned_from_deploy(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = _mounts(compose, "grafana")
    assert mounts["/etc/grafana/provisioning"] == str(ROOT / "deploy" / "grafana" / "provisioning")
    assert mounts["/etc/grafana/dashboards"] == str(ROOT / "deploy" / "grafana" / "dashboards")
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/convoforge.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_workers_scale_without_host_port_clashes(compose: dict[str, Any]) -> None:
    """`docker compose up --scale generator=3 --scale exporter=2` needs no fixed host ports."""
    for service in ("generator", "exporter", "janitor"):
        assert not compose["services"][service].get("ports")
        assert not compose["services"][service].get("container_name")


def test_api_counts_every_worker_process(compose: dict[str, Any]) -> None:
    env = compose["services"]["api"]["environment"]
    assert env["PROMETHEUS_MULTIPROC_DIR"]
    assert int(env["API_WORKERS"]) >= 2

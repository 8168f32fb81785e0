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


@pytest.mark.parametrize("service", [*APP_SERVICES, "postgres", "redis", "minio"])
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


def test_worker_metrics_ports_match_defaults(compose: dict[str, Any]) -> None:
    for service, port in (("generator", 9101), ("exporter", 9102), ("janitor", 9103)):
        probe = " ".join(compose["services"][service]["healthcheck"]["test"])
        assert f":{port}/metrics" in probe

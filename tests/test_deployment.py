"""The deployment files: the Dockerfile linted (hadolint) and its entry and health-check commands
run outside a container (this machine cannot build images), the systemd unit checked by
systemd-analyze, and the compose file's setup commands run for real with promtool checking the
Prometheus configuration they feed."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support.servers import free_port, http_get, poll

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
UNIT = ROOT / "deploy" / "systemd" / "crmmetrics.service"
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"


def instruction(name: str) -> list[str]:
    """The JSON (exec) form of the last Dockerfile instruction ``name``, continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line for line in text.splitlines() if line.startswith(name + " ")]
    body = lines[-1][len(name) + 1 :].strip()
    if name == "HEALTHCHECK":
        body = body[body.index("CMD ") + 4 :]
    return json.loads(body)


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    version = subprocess.run([hadolint, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("Haskell Dockerfile Linter"), version
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "", done.stdout
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.MULTILINE)
    assert re.search(r"^USER 10001$", text, re.MULTILINE)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("deploy-demo")
    done = subprocess.run([sys.executable, "-m", "crmmetrics", "demo", "--dir", str(directory), "--customers", "150", "--once", "--history-months", "0"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return directory


def test_the_images_entry_command_serves_and_its_health_check_passes(demo):
    entrypoint, command, check = instruction("ENTRYPOINT"), instruction("CMD"), instruction("HEALTHCHECK")
    assert entrypoint == ["crmmetrics"] and command[0] == "serve"
    port = free_port()
    # As in the image, but on loopback and a free port.
    args = [a for a in command]
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = str(port)
    env = {**os.environ, "CRMMETRICS_CONFIG": str(demo / "crmmetrics.toml")}
    health = [part.replace("9632", str(port)) for part in check]
    health[0] = sys.executable
    process = subprocess.Popen([sys.executable, "-m", "crmmetrics", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        poll(lambda: http_get(f"http://127.0.0.1:{port}/-/healthy") == b"crmmetrics is healthy\n", 60, "the entry command to serve")
        assert subprocess.run(health, timeout=30).returncode == 0
    finally:
        process.terminate()
        assert process.wait(30) == 0
    assert subprocess.run(health, timeout=30, capture_output=True).returncode != 0  # nothing serves: unhealthy


def test_the_systemd_unit_verifies(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: run scripts/install-test-deps.sh"
    text = UNIT.read_text()
    for setting in ("DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=crmmetrics", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n"):
        assert setting in text, setting
    # verify checks that ExecStart exists: point it at this environment's crmmetrics.
    unit = tmp_path / "crmmetrics.service"
    unit.write_text(text.replace("/opt/crmmetrics/bin/crmmetrics", str(Path(sys.executable).with_name("crmmetrics"))))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stderr
    broken = tmp_path / "broken.service"
    broken.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSytem=strict"))
    done = subprocess.run([analyze, "verify", str(broken)], capture_output=True, text=True)
    assert "Unknown key 'ProtectSytem'" in done.stderr  # the check would see a typo


def test_the_compose_setup_commands_feed_prometheus_and_grafana(demo, tmp_path):
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"crmmetrics", "setup", "prometheus", "grafana"}
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(".") or source in compose["volumes"], volume
    # The setup service's commands, with the volumes replaced by directories here.
    generated = tmp_path / "generated"
    script = services["setup"]["command"][0].replace("/generated", str(generated)).replace(
        "/var/lib/crmmetrics/demo", str(demo)
    ).replace("crmmetrics ", f"{shlex.quote(sys.executable)} -m crmmetrics ")
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rules = generated / "rules" / "crmmetrics.rules.yml"
    assert rules.is_file()
    prometheus = yaml.safe_load((COMPOSE.parent / "prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/generated/rules/*.yml"]
    prometheus["rule_files"] = [str(generated / "rules" / "*.yml")]
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus))
    promtool = shutil.which("promtool")
    done = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout and "rule files found" in done.stdout
    # Grafana: the provisioning directory it is given finds the dashboards and the datasource.
    provisioning = Path(services["grafana"]["environment"]["GF_PATHS_PROVISIONING"].replace("/generated", str(generated)))
    provider = yaml.safe_load((provisioning / "dashboards" / "crmmetrics.yaml").read_text())["providers"][0]
    dashboards = Path(provider["options"]["path"].replace("${GF_PATHS_PROVISIONING}", str(provisioning))).resolve()
    assert {"scorecard.json", "service-health.json"} <= {p.name for p in dashboards.glob("*.json")}
    datasource = yaml.safe_load((provisioning / "datasources" / "crmmetrics.yaml").read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"

"""docker-compose.yml against the code: settings names, ports, secrets, health checks, profiles, mounts.

The compose file is parsed with PyYAML (merge keys resolved).  When Debian's
``docker-compose`` binary is installed the file is also validated with
``docker-compose config`` (with a .env made from .env.example); that one
sub-check is skipped, saying so, when the binary is absent.  No Docker
engine is needed for either.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from alerts.config import AlertSettings
from alerts.config import settings_table as alert_settings_table
from dashboards.materialize import META_RP, STATE_RP, MaterializeConfig
from lifewatch.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
LIFEWATCH = [name for name, s in SERVICES.items() if str(s.get("image", "")).startswith("lifewatch:")]
REQUIRED = re.compile(r"^\$\{(?P<var>[A-Z0-9_]+):\?[^}]+\}$")
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN")


def env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in (SERVICES[service].get("environment") or {}).items()}


def ports(service: str) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port."""
    out = []
    for p in SERVICES[service].get("ports", []):
        parts = str(p).split(":")
        addr = parts[0] if len(parts) == 3 else "0.0.0.0"
        out.append((addr, int(parts[-2]), int(parts[-1])))
    return out


def real_settings() -> set[str]:
    names = {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}
    names |= {row[0] for row in alert_settings_table()}
    from alerts.notify.config import VARS

    return names | set(VARS.values())


def test_the_stack_has_every_service() -> None:
    assert set(SERVICES) == {"mosquitto", "influxdb", "postgres", "prometheus", "grafana", "ingest", "api", "notify", "dashboards", "simulator"}
    assert sorted(LIFEWATCH) == ["api", "dashboards", "ingest", "notify", "simulator"]
    commands = {name: SERVICES[name]["command"][:2] for name in LIFEWATCH}
    assert commands == {"ingest": ["ingest"], "api": ["api"], "notify": ["notify"], "dashboards": ["dashboards", "materialize"],
                        "simulator": ["simulate", "--speed"]}


def test_images_are_pinned() -> None:
    for name, s in SERVICES.items():
        image = s["image"]
        if name in LIFEWATCH:
            assert s["build"]["dockerfile"] == "deploy/lifewatch.Dockerfile" and (ROOT / s["build"]["dockerfile"]).is_file()
            continue
        repo, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.match(r"v?\d+\.\d+", tag), f"{name}: {image} is not pinned"
    assert SERVICES["influxdb"]["image"].startswith("influxdb:1.8.")


def test_every_lifewatch_variable_is_a_real_setting() -> None:
    known = real_settings()
    for name, s in SERVICES.items():
        for key in s.get("environment") or {}:
            if key.startswith(ENV_PREFIX):
                assert key in known, f"{name}: {key} is not a lifewatch setting"
    # and each value parses as that setting would
    for name in LIFEWATCH:
        values = {k: v for k, v in env(name).items() if "${" not in v}
        s = Settings.from_env({k: v for k, v in values.items() if k in {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}})
        AlertSettings.from_settings(s, environ=values)


def test_ports_match_the_settings() -> None:
    defaults = Settings()
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    listener = int(re.search(r"^listener (\d+)", conf, re.M).group(1))
    assert [(h, c) for _, h, c in ports("mosquitto")] == [(defaults.mqtt_port, listener)]
    assert int(re.search(r"^max_inflight_messages (\d+)", conf, re.M).group(1)) == defaults.mqtt_max_inflight
    assert int(re.search(r"^max_queued_messages (\d+)", conf, re.M).group(1)) == defaults.mqtt_max_queued
    assert ports("influxdb") == [("127.0.0.1", defaults.influx_port, 8086)]
    for name in LIFEWATCH:
        e = env(name)
        assert e["LIFEWATCH_MQTT_HOST"] == "mosquitto" and int(e["LIFEWATCH_MQTT_PORT"]) == listener
        url = urlsplit(e["LIFEWATCH_INFLUX_URL"])
        assert (url.hostname, url.port) == ("influxdb", 8086)
    api_port = AlertSettings().api_port
    assert int(env("api")["LIFEWATCH_API_PORT"]) == api_port and ports("api") == [("0.0.0.0", api_port, api_port)]
    assert api_port == int(re.search(r":(\d+)", SERVICES["api"]["healthcheck"]["test"][-1]).group(1))
    metrics_port = int(env("ingest")["LIFEWATCH_METRICS_ADDR"].rsplit(":", 1)[1])
    assert metrics_port == int(defaults.metrics_addr.rsplit(":", 1)[1])
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert prom["scrape_configs"][0]["static_configs"][0]["targets"] == [f"ingest:{metrics_port}"]
    assert str(metrics_port) in SERVICES["ingest"]["healthcheck"]["test"][-1]
    assert ports("grafana") == [("0.0.0.0", 3000, 3000)]


def test_secrets_are_required_and_have_no_defaults() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if line and not line.startswith("#"))
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    defaulted = set(re.findall(r"\$\{([A-Z0-9_]+):?-", text))
    assert not {v for v in defaulted if SECRET_KEY.search(v)}, "a secret with a default value"
    assert required <= set(example), f"not in .env.example: {required - set(example)}"
    for var in example:
        if SECRET_KEY.search(var):
            assert example[var] == "", f".env.example must not carry a value for {var}"
            assert var in required, f"{var} is not required by docker-compose.yml"
    for name, s in SERVICES.items():
        for key, value in (s.get("environment") or {}).items():
            if SECRET_KEY.search(key):
                assert REQUIRED.match(str(value)), f"{name}: {key} must be ${{VAR:?...}}, not {value!r}"
    assert "postgresql+psycopg://${POSTGRES_USER:?" in env("api")["LIFEWATCH_ALERTS_DB_URL"]


def test_health_checks_and_profiles() -> None:
    for name, s in SERVICES.items():
        if name == "simulator":
            assert s["profiles"] == ["demo"]
            continue
        assert "profiles" not in s, name
        test = s.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
    from dashboards.cli import add_arguments

    p = argparse.ArgumentParser()
    add_arguments(p)
    check = SERVICES["dashboards"]["healthcheck"]["test"]
    assert check[1] == "lifewatch" and p.parse_args(check[3:]).check
    assert p.parse_args(SERVICES["dashboards"]["command"][1:]).interval == "60s"
    deps = SERVICES["ingest"]["depends_on"]
    assert {k: v["condition"] for k, v in deps.items()} == dict.fromkeys(("mosquitto", "influxdb", "postgres"), "service_healthy")


def test_volumes_and_mounts() -> None:
    declared = set(COMPOSE["volumes"])
    for name, s in SERVICES.items():
        for v in s.get("volumes", []):
            source, target = str(v).split(":")[:2]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared, f"{name}: undeclared volume {source}"
    ingest = env("ingest")
    assert f"lifewatch-state:{ingest['LIFEWATCH_STATE_DIR']}" in SERVICES["ingest"]["volumes"]
    provider = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/lifewatch.yaml").read_text())["providers"][0]
    grafana = SERVICES["grafana"]["volumes"]
    assert "./dashboards/provisioning:/etc/grafana/provisioning:ro" in grafana
    assert f"./dashboards/json:{provider['options']['path']}:ro" in grafana
    home = env("grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"]) and (ROOT / "dashboards/json" / home.split("/lifewatch/", 1)[1]).is_file()


def test_grafana_is_locked_and_its_datasources_are_fed() -> None:
    e = env("grafana")
    assert e["GF_AUTH_ANONYMOUS_ENABLED"] == "false" and e["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert REQUIRED.match(e["GF_SECURITY_ADMIN_PASSWORD"]) and REQUIRED.match(e["GF_SECURITY_SECRET_KEY"])
    lines = (ROOT / "dashboards/provisioning/datasources/lifewatch.yaml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    assert set(re.findall(r"\$\{(\w+)\}", text)) == {"INFLUXDB_URL", "INFLUXDB_READ_USER", "INFLUXDB_DB", "INFLUXDB_READ_USER_PASSWORD",
                                                     "PROMETHEUS_URL"}
    for var in set(re.findall(r"\$\{(\w+)\}", text)):
        assert var in e, f"Grafana's environment lacks {var} (used by the datasource provisioning)"
    assert e["INFLUXDB_DB"] == env("influxdb")["INFLUXDB_DB"] and e["INFLUXDB_READ_USER"] == env("influxdb")["INFLUXDB_READ_USER"]
    assert urlsplit(e["INFLUXDB_URL"]).port == 8086 and urlsplit(e["PROMETHEUS_URL"]).hostname == "prometheus"


def test_influxdb_is_initialised_for_the_dashboards() -> None:
    e = env("influxdb")
    assert e["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"
    assert {"INFLUXDB_DB", "INFLUXDB_ADMIN_USER", "INFLUXDB_ADMIN_PASSWORD", "INFLUXDB_USER", "INFLUXDB_READ_USER"} <= set(e)
    assert "./deploy/influxdb/init:/docker-entrypoint-initdb.d:ro" in SERVICES["influxdb"]["volumes"]
    script = (ROOT / "deploy/influxdb/init/10-lifewatch-retention.sh").read_text()
    assert f'\\"{META_RP}\\" ON \\"$INFLUXDB_DB\\" DURATION INF' in script
    assert f'\\"{STATE_RP}\\" ON \\"$INFLUXDB_DB\\" DURATION {MaterializeConfig().state_rp_duration} ' in script
    assert env("dashboards")["LIFEWATCH_INFLUX_USERNAME"] == e["INFLUXDB_USER"]


def test_mqtt_accounts_and_acl() -> None:
    acl = (ROOT / "deploy/mosquitto/acl").read_text()
    entry = (ROOT / "deploy/mosquitto/entrypoint.sh").read_text()
    assert "pattern write lifelines/+/+/%u/reading" in acl and "pattern write lifelines/+/+/%u/status" in acl
    blocks = {b.split("\n", 1)[0].strip(): b for b in acl.split("\nuser ")[1:]}
    assert "write lifelines/+/+/+/reading" not in blocks["lifewatch-ingest"]  # ingest reads readings, publishes platform topics
    assert "topic read lifelines/+/+/+/reading" in blocks["lifewatch-ingest"]
    for name in LIFEWATCH:
        user = env(name).get("LIFEWATCH_MQTT_USERNAME")
        if user:
            assert user in blocks, f"{name}: {user} has no ACL"
            assert f" {user} " in entry, f"{name}: {user} gets no password"
    assert SERVICES["mosquitto"]["entrypoint"][-1] == "/mosquitto/config/entrypoint.sh"
    assert "allow_anonymous false" in (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()


def test_docker_compose_config_validates(tmp_path: Path) -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("Debian's docker-compose is not installed: `docker-compose config` validation skipped (PyYAML checks ran)")
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#") and line.endswith("=") and SECRET_KEY.search(line):
            line += "test-only-value"
        lines.append(line)
    (tmp_path / "test.env").write_text("\n".join(lines) + "\n")
    run = [binary, "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(tmp_path / "test.env")]
    clean = {"PATH": "/usr/bin:/bin"}
    ok = subprocess.run([*run, "--profile", "demo", "config", "--services"], capture_output=True, text=True, env=clean, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert sorted(ok.stdout.split()) == sorted(SERVICES)
    (tmp_path / "empty.env").write_text("")
    bad = subprocess.run([*run[:-1], str(tmp_path / "empty.env"), "config", "-q"], capture_output=True, text=True, env=clean, timeout=60)
    assert bad.returncode != 0 and "in .env" in bad.stderr

"""lifewatch.services: config rendering, the process handle, and ``lifewatch services`` end to end."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from lifewatch import services
from lifewatch.services import (
    InfluxdService,
    InstallRequired,
    MosquittoService,
    ServiceConfigError,
    free_port,
    influxd_conf,
    mosquitto_conf,
    mqtt_probe,
)
from lifewatch.settings import Settings

MOSQUITTO_DEFAULT_MAX_QUEUED = 1000


def conf_lines(text: str) -> dict[str, list[str]]:
    """mosquitto.conf -> option -> every value it was given, in order."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        out.setdefault(key, []).append(value)
    return out


def alive(pid: int) -> bool:
    """Exists and is not a zombie (an orphan may wait for a reaper that never comes)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ---------------------------------------------------------------- config rendering


@pytest.mark.parametrize("max_queued", [0, 250_000])
def test_mosquitto_conf_demo(tmp_path: Path, max_queued: int) -> None:
    conf = conf_lines(mosquitto_conf(tmp_path, 23456, max_inflight=20000, max_queued=max_queued, allow_anonymous=True))
    assert conf["listener"] == ["23456 127.0.0.1"]
    assert conf["max_queued_messages"] == [str(max_queued)]
    assert int(conf["max_queued_messages"][0]) != MOSQUITTO_DEFAULT_MAX_QUEUED
    assert conf["max_queued_bytes"] == ["0"]
    assert conf["max_inflight_messages"] == ["20000"]
    assert conf["allow_anonymous"] == ["true"]
    assert "password_file" not in conf
    assert conf["persistence"] == ["true"]
    assert conf["persistence_location"] == [f"{tmp_path / 'data'}/"]
    assert conf["log_dest"] == [f"file {tmp_path / 'mosquitto.log'}"]
    assert {"error", "warning", "notice", "information", "subscribe"} <= set(conf["log_type"])
    assert conf["connection_messages"] == ["true"]


def test_mosquitto_conf_without_anonymous_needs_password_file(tmp_path: Path) -> None:
    conf = conf_lines(
        mosquitto_conf(tmp_path, 23456, max_inflight=5000, max_queued=0, allow_anonymous=False,
                       password_file=tmp_path / "passwd", acl_file=tmp_path / "acl")
    )
    assert conf["allow_anonymous"] == ["false"]
    assert conf["password_file"] == [str(tmp_path / "passwd")]
    assert conf["acl_file"] == [str(tmp_path / "acl")]
    with pytest.raises(ServiceConfigError):
        mosquitto_conf(tmp_path, 23456, max_inflight=5000, max_queued=0, allow_anonymous=False)


def test_mosquitto_conf_without_persistence(tmp_path: Path) -> None:
    conf = conf_lines(mosquitto_conf(tmp_path, 23456, persistence=False, max_inflight=1, max_queued=0,
                                     allow_anonymous=True))
    assert conf["persistence"] == ["false"]
    assert "persistence_location" not in conf


def test_settings_decide_anonymous(tmp_path: Path) -> None:
    demo = services.mosquitto_service(Settings(state_dir=tmp_path, demo=True, mqtt_max_queued=0))
    demo.workdir.mkdir(parents=True)
    demo.prepare()
    assert conf_lines(demo.config_path.read_text())["allow_anonymous"] == ["true"]

    with pytest.raises(ServiceConfigError) as err:
        services.mosquitto_service(Settings(state_dir=tmp_path, demo=False))
    assert "LIFEWATCH_MQTT_USERNAME" in str(err.value) and "LIFEWATCH_DEMO=1" in str(err.value)

    locked = services.mosquitto_service(
        Settings(state_dir=tmp_path / "locked", demo=False, mqtt_username="lw", mqtt_password="s3cret pw")
    )
    locked.workdir.mkdir(parents=True)
    locked.prepare()
    conf = conf_lines(locked.config_path.read_text())
    assert conf["allow_anonymous"] == ["false"]
    passwd = Path(conf["password_file"][0])
    assert passwd.parent == locked.workdir
    user, _, hashed = passwd.read_text().strip().partition(":")
    assert user == "lw" and hashed and "s3cret" not in hashed


def test_influxd_conf(tmp_path: Path) -> None:
    conf = tomllib.loads(influxd_conf(tmp_path, 23086, 23088))
    assert conf["bind-address"] == "127.0.0.1:23088"
    assert conf["reporting-disabled"] is True
    assert conf["http"]["bind-address"] == "127.0.0.1:23086"
    assert conf["http"]["log-enabled"] is False
    assert conf["monitor"]["store-enabled"] is False
    assert conf["logging"]["level"] == "warn"
    assert conf["continuous_queries"]["enabled"] is True
    for key, sub in (("meta", "dir"), ("data", "dir"), ("data", "wal-dir")):
        assert Path(conf[key][sub]).parent == tmp_path
    for listener in ("graphite", "collectd", "opentsdb", "udp"):
        assert all(entry["enabled"] is False for entry in conf[listener])
    with pytest.raises(ServiceConfigError):
        influxd_conf(tmp_path, 23086, 23086)


# ---------------------------------------------------------------- binaries


def test_install_without_root_says_what_to_run(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    real = services.find_binary
    monkeypatch.setattr(services, "find_binary", lambda name: None if name == "influxd" else real(name))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(InstallRequired) as err:
        services.install_binaries()
    assert err.value.missing == ["influxd"]
    assert "apt-get install -y influxdb" in err.value.command
    assert "mosquitto" not in err.value.command  # only the missing packages
    assert "docker compose" in str(err.value)

    rc = services.cli(argparse.Namespace(action="install", only=None, json=False), Settings())
    assert rc == 1
    assert "apt-get install -y influxdb" in capsys.readouterr().err


# ---------------------------------------------------------------- the process handle


def test_fixture_services_are_our_own(broker, influxd) -> None:  # noqa: ANN001
    assert broker.port != 1883 and influxd.port != 8086
    for svc in (broker.process, influxd.process):
        pid = svc.pid
        assert pid is not None and alive(pid)
        assert str(svc.config_path) in Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        assert svc.config_path.parent == svc.workdir
        assert int(svc.pid_path.read_text()) == pid
    assert mqtt_probe(broker.host, broker.port) is None
    assert "max_queued_messages 0\n" in broker.process.config_path.read_text()


def test_broker_with_password_refuses_anonymous(tmp_path: Path) -> None:
    svc = MosquittoService(tmp_path, free_port(), allow_anonymous=False, username="lw", password="pa ss:wörd")
    assert svc.start() is True
    try:
        svc.wait_healthy(10)
        assert mqtt_probe(svc.host, svc.port, "lw", "pa ss:wörd") is None
        assert "refused" in (mqtt_probe(svc.host, svc.port) or "")
        assert "refused" in (mqtt_probe(svc.host, svc.port, "lw", "wrong") or "")
    finally:
        pid = svc.stop()
    assert pid is not None and wait_dead(pid, 1)
    assert not svc.pid_path.exists()


def _session_message(port: int, client_id: str, topic: str, publish: bytes | None, timeout: float = 5.0) -> list[bytes]:
    """Connect a persistent QoS 1 session, optionally publish, collect what arrives, disconnect."""
    got: list[bytes] = []
    subscribed: list[bool] = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    c.on_message = lambda client, userdata, msg: got.append(msg.payload)
    c.on_subscribe = lambda *a: subscribed.append(True)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        c.subscribe(topic, qos=1)
        deadline = time.monotonic() + timeout
        while not subscribed and time.monotonic() < deadline:
            time.sleep(0.02)
        if publish is not None:
            c.publish(topic, publish, qos=1).wait_for_publish(timeout)
        else:
            while not got and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        c.disconnect()
        c.loop_stop()
    return got


def test_handle_freeze_thaw_kill_restart(tmp_path: Path) -> None:
    svc = MosquittoService(tmp_path, free_port(), allow_anonymous=True, max_inflight=100, max_queued=0)
    svc.start()
    svc.wait_healthy(10)
    first = svc.pid
    assert first is not None

    # a persistent session that is offline while a message arrives keeps it across a restart
    topic = f"t/{uuid.uuid4().hex}"
    _session_message(svc.port, "keeper", topic, None, timeout=0.2)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub")
    pub.connect("127.0.0.1", svc.port)
    pub.loop_start()
    pub.publish(topic, b"kept", qos=1).wait_for_publish(5)
    pub.disconnect()
    pub.loop_stop()

    svc.freeze()
    assert "no CONNACK" in (svc.probe(timeout=0.5) or "")
    assert svc.is_running()
    svc.thaw()
    svc.wait_healthy(5)

    svc.restart()
    second = svc.pid
    assert second is not None and second != first and not alive(first)
    assert _session_message(svc.port, "keeper", topic, None) == [b"kept"]

    assert svc.kill() == second
    assert not alive(second) and svc.pid is None and not svc.healthy(timeout=0.5)
    svc.start()
    svc.wait_healthy(10)
    svc.freeze()
    third = svc.stop()  # a frozen broker still stops
    assert third is not None and not alive(third)


def test_stop_never_signals_a_foreign_pid(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        svc = InfluxdService(tmp_path, free_port(), free_port())
        svc.pid_path.write_text(f"{stranger.pid}\n")  # as if the PID had been recycled
        assert svc.pid is None and not svc.is_running()
        assert svc.stop() is None
        assert stranger.poll() is None
        assert not svc.pid_path.exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_unhealthy_start_reports_the_log(tmp_path: Path) -> None:
    svc = InfluxdService(tmp_path, free_port(), free_port())
    svc.workdir.mkdir(exist_ok=True)
    (tmp_path / "meta").write_text("not a directory")  # influxd cannot open its meta store
    svc.start()
    with pytest.raises(services.ServiceUnhealthy) as err:
        svc.wait_healthy(10)
    assert "exited" in err.value.reason
    assert str(svc.log_path) in str(err.value)
    assert err.value.log_tail.strip()
    svc.stop()


# ---------------------------------------------------------------- the CLI, as a user runs it


def lifewatch_cmd() -> list[str]:
    script = Path(sys.executable).with_name("lifewatch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lifewatch.cli"]


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LIFEWATCH_")}
    return subprocess.run([*lifewatch_cmd(), "services", *args], env={**base, **env},
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def cli_env(tmp_path: Path):  # noqa: ANN201
    env = {
        "LIFEWATCH_STATE_DIR": str(tmp_path / "state"),
        "LIFEWATCH_DEMO": "1",
        "LIFEWATCH_MQTT_PORT": str(free_port()),
        "LIFEWATCH_INFLUX_URL": f"http://127.0.0.1:{free_port()}",
        "LIFEWATCH_INFLUX_RPC_PORT": str(free_port()),
        "LIFEWATCH_INFLUX_DB": "cli_test",
    }
    yield env
    run_cli(env, "down")  # whatever the test left running


@pytest.mark.integration
def test_cli_up_status_down(cli_env: dict[str, str], broker) -> None:  # noqa: ANN001
    up = run_cli(cli_env, "up")
    assert up.returncode == 0, up.stderr
    assert cli_env["LIFEWATCH_MQTT_PORT"] in up.stdout and "mosquitto.log" in up.stdout

    st = run_cli(cli_env, "status", "--json")
    assert st.returncode == 0, st.stdout + st.stderr
    report = json.loads(st.stdout)
    assert set(report) == {"mosquitto", "influxd"}
    pids = {}
    for name, port in (("mosquitto", cli_env["LIFEWATCH_MQTT_PORT"]),
                       ("influxd", cli_env["LIFEWATCH_INFLUX_URL"].rsplit(":", 1)[1])):
        r = report[name]
        assert r["running"] is True and r["healthy"] is True and r["port"] == int(port)
        assert Path(r["log"]).is_file()
        pids[name] = r["pid"]
        assert alive(r["pid"]) and Path(f"/proc/{r['pid']}/cmdline").read_bytes().split(b"\0")[0].endswith(
            name.encode())

    # the database was created
    import httpx

    dbs = httpx.get(cli_env["LIFEWATCH_INFLUX_URL"] + "/query", params={"q": "SHOW DATABASES"}).json()
    assert ["cli_test"] in dbs["results"][0]["series"][0]["values"]

    again = run_cli(cli_env, "up")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already running") == 2
    assert json.loads(run_cli(cli_env, "status", "--json").stdout)["mosquitto"]["pid"] == pids["mosquitto"]

    down = run_cli(cli_env, "down")
    assert down.returncode == 0, down.stderr
    for name, pid in pids.items():
        assert f"stopped (pid {pid})" in down.stdout
        assert wait_dead(pid), f"{name} pid {pid} still alive after down"
    assert not list(Path(cli_env["LIFEWATCH_STATE_DIR"]).glob("services/*/*.pid"))
    assert broker.process.is_running()  # only the PIDs `up` started were stopped

    after = run_cli(cli_env, "status", "--json")
    assert after.returncode == 3
    assert all(r["running"] is False and r["healthy"] is False for r in json.loads(after.stdout).values())
    assert "was not running" in run_cli(cli_env, "down").stdout


@pytest.mark.integration
def test_cli_up_on_a_taken_port_fails_clearly(cli_env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = {**cli_env, "LIFEWATCH_MQTT_PORT": str(port)}
        res = run_cli(env, "up")
    assert res.returncode == 1
    assert str(port) in res.stderr and "LIFEWATCH_MQTT_PORT" in res.stderr
    # nothing was started: the check runs before any service starts
    assert not list(Path(cli_env["LIFEWATCH_STATE_DIR"]).glob("services/*/*.pid"))


def test_cli_up_outside_demo_needs_credentials(cli_env: dict[str, str]) -> None:
    res = run_cli({**cli_env, "LIFEWATCH_DEMO": "0"}, "up", "--only", "mosquitto")
    assert res.returncode == 1
    assert "LIFEWATCH_MQTT_USERNAME" in res.stderr and "LIFEWATCH_DEMO=1" in res.stderr


def test_service_health_in_process(settings: Settings, broker, influxd) -> None:  # noqa: ANN001
    # settings point at the fixture services, which `services up` did not start under state_dir
    health = services.service_health(settings)
    assert health["mosquitto"]["healthy"] is True and health["mosquitto"]["running"] is False
    assert health["influxd"]["healthy"] is True and health["influxd"]["port"] == influxd.port
    rc = services.cli(argparse.Namespace(action="status", only="influxd", json=True), settings)
    assert rc == 0

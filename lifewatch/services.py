"""Project-local Mosquitto and InfluxDB 1.x, run from the system binaries.

The platform never uses the machine's own broker (1883) or database (8086):
``lifewatch services up`` starts private instances on the ports from the
settings, under ``<state_dir>/services/<name>/``, and the pytest fixtures
start the same classes on free ports in temporary directories.

Contract:

* :func:`mosquitto_conf` and :func:`influxd_conf` are pure: they render the
  configuration text and touch no file.
* :class:`ManagedProcess` (with :class:`MosquittoService` and
  :class:`InfluxdService`) starts one service in its own session, keeps its
  stdout/stderr in ``<workdir>/<name>.log``, writes ``<workdir>/<name>.pid``,
  and only ever signals the exact PID it started (checked against
  ``/proc/<pid>/cmdline`` so a recycled PID is never hit).
* :func:`install_binaries` installs the Debian packages when it may (root on
  Debian/Ubuntu) and otherwise raises :class:`InstallRequired` with the
  command to run.
* :func:`service_health` reports each service for ``lifewatch status``;
  :func:`cli` is the ``lifewatch services`` handler.

Every failure is a :class:`ServiceError` subclass with a message meant for
the user; only :func:`cli` prints.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import httpx

from lifewatch.settings import Settings

SERVICE_NAMES: tuple[str, ...] = ("mosquitto", "influxd")

# binary -> Debian package; the first group is required, the second is installed alongside
REQUIRED_BINARIES: dict[str, str] = {"mosquitto": "mosquitto", "mosquitto_passwd": "mosquitto", "influxd": "influxdb"}
COMPANION_BINARIES: dict[str, str] = {"mosquitto_sub": "mosquitto-clients", "mosquitto_pub": "mosquitto-clients"}
# Debian puts mosquitto in /usr/sbin, which a normal user's PATH may lack
_EXTRA_PATH = ("/usr/sbin", "/usr/local/sbin", "/sbin")
_LOOPBACK = "127.0.0.1"
STOP_GRACE = 10.0


# ---------------------------------------------------------------- errors


class ServiceError(Exception):
    """A service could not be installed, configured, started or stopped."""


class InstallRequired(ServiceError):
    """Binaries are missing and this process may not install them; ``command`` says how."""

    def __init__(self, missing: Iterable[str], command: str):
        self.missing = sorted(set(missing))
        self.command = command
        super().__init__(
            f"missing {', '.join(self.missing)}; install with:\n    {command}\n"
            "or run the services in containers instead: docker compose up -d"
        )


class ServiceConfigError(ServiceError):
    """The settings do not allow a safe configuration (e.g. no MQTT credentials outside demo mode)."""


class PortInUse(ServiceError):
    """A port the service needs is already taken by another process."""

    def __init__(self, service: str, port: int, variable: str):
        self.service = service
        self.port = port
        self.variable = variable
        super().__init__(
            f"{service}: port 127.0.0.1:{port} is already in use by another process; "
            f"stop it or choose another port with {variable}"
        )


class ServiceUnhealthy(ServiceError):
    """The service exited or did not answer its health check in time; carries the log tail."""

    def __init__(self, service: str, reason: str, log_path: Path, log_tail: str):
        self.service = service
        self.reason = reason
        self.log_path = log_path
        self.log_tail = log_tail
        super().__init__(f"{service} is not healthy: {reason}\n--- last lines of {log_path} ---\n{log_tail}")


# ---------------------------------------------------------------- config rendering


def _check_path(p: Path | str) -> str:
    text = str(p)
    if "\n" in text or "\r" in text:
        raise ServiceConfigError(f"path {text!r} contains a line break")
    return text


def _current_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return "root" if os.geteuid() == 0 else str(os.geteuid())


def mosquitto_conf(
    workdir: Path | str,
    port: int,
    *,
    persistence: bool = True,
    max_inflight: int,
    max_queued: int,
    allow_anonymous: bool,
    password_file: Path | str | None = None,
    acl_file: Path | str | None = None,
    user: str | None = None,
) -> str:
    """Render ``mosquitto.conf`` for Mosquitto 2.0: one listener on 127.0.0.1:``port``.

    ``max_queued`` is the per-session queue (0 = unlimited; Mosquitto's own
    default of 1000 silently drops QoS 1 messages for slow or offline
    persistent sessions, so it is always written out).  ``max_inflight`` must
    hold one ingest batch (0 = unlimited).  Anonymous clients are allowed only
    when ``allow_anonymous`` is true; otherwise a ``password_file`` is
    required.  ``user`` is the account Mosquitto keeps when started as root
    (default: the current user, so it can write into ``workdir``).
    """
    if not 0 < port < 65536:
        raise ServiceConfigError(f"mosquitto port {port} is not a valid TCP port")
    if max_queued < 0:
        raise ServiceConfigError("max_queued must be >= 0 (0 = unlimited)")
    if not 0 <= max_inflight <= 65535:
        raise ServiceConfigError("max_inflight must be between 0 (unlimited) and 65535")
    if not allow_anonymous and password_file is None:
        raise ServiceConfigError("without anonymous access Mosquitto needs a password file")
    wd = Path(workdir)
    lines = [
        "# generated by lifewatch.services: edits are overwritten by 'lifewatch services up'",
        f"user {user or _current_user()}",
        "per_listener_settings false",
        f"listener {port} {_LOOPBACK}",
        "set_tcp_nodelay true",
        f"allow_anonymous {'true' if allow_anonymous else 'false'}",
    ]
    if password_file is not None:
        lines.append(f"password_file {_check_path(password_file)}")
    if acl_file is not None:
        lines.append(f"acl_file {_check_path(acl_file)}")
    if persistence:
        lines += [
            "persistence true",
            f"persistence_location {_check_path(wd / 'data')}/",
            "persistence_file mosquitto.db",
        ]
    else:
        lines.append("persistence false")
    lines += [
        f"max_queued_messages {max_queued}",
        "max_queued_bytes 0",
        f"max_inflight_messages {max_inflight}",
        f"log_dest file {_check_path(wd / 'mosquitto.log')}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_type subscribe",
        "connection_messages true",
        "log_timestamp true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    return "\n".join(lines) + "\n"


def influxd_conf(workdir: Path | str, http_port: int, rpc_port: int) -> str:
    """Render a complete ``influxd.conf`` for InfluxDB 1.6/1.8 (v1 HTTP API only).

    Data, WAL and meta live under ``workdir``; HTTP listens on
    127.0.0.1:``http_port``, the backup/restore RPC on 127.0.0.1:``rpc_port``;
    usage reporting, the ``_internal`` monitor store and every other listener
    are off; continuous queries are on.
    """
    for what, p in (("http", http_port), ("rpc", rpc_port)):
        if not 0 < p < 65536:
            raise ServiceConfigError(f"influxd {what} port {p} is not a valid TCP port")
    if http_port == rpc_port:
        raise ServiceConfigError(f"influxd http and rpc ports must differ (both {http_port})")
    wd = Path(workdir)

    def q(p: Path) -> str:
        return json.dumps(_check_path(p))

    return f"""# generated by lifewatch.services: edits are overwritten by 'lifewatch services up'
# upstream InfluxDB 1.x spells the key reporting-disabled, Debian's build reporting-enabled
reporting-disabled = true
reporting-enabled = false
bind-address = "{_LOOPBACK}:{rpc_port}"

[meta]
  dir = {q(wd / "meta")}
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = {q(wd / "data")}
  wal-dir = {q(wd / "wal")}
  index-version = "inmem"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  trace-logging-enabled = false

[coordinator]
  write-timeout = "10s"

[retention]
  enabled = true
  check-interval = "30m0s"

[shard-precreation]
  enabled = true

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "{_LOOPBACK}:{http_port}"
  auth-enabled = false
  log-enabled = false
  suppress-write-log = true
  write-tracing = false
  pprof-enabled = false
  https-enabled = false
  unix-socket-enabled = false
  max-body-size = 25000000

[logging]
  format = "auto"
  level = "warn"
  suppress-logo = true

[ifql]
  enabled = false

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false

[continuous_queries]
  enabled = true
  log-enabled = true
  run-interval = "1s"
"""


# ---------------------------------------------------------------- binaries


def find_binary(name: str) -> str | None:
    """Absolute path of ``name`` on PATH or in the sbin directories, or None."""
    path = os.environ.get("PATH", os.defpath)
    return shutil.which(name, path=os.pathsep.join([path, *_EXTRA_PATH]))


def missing_binaries(names: Iterable[str] = REQUIRED_BINARIES) -> list[str]:
    return [n for n in names if find_binary(n) is None]


def _can_apt() -> bool:
    return os.geteuid() == 0 and Path("/etc/debian_version").exists() and find_binary("apt-get") is not None


def _packages_for(missing: Iterable[str]) -> list[str]:
    packages = {REQUIRED_BINARIES[b] for b in missing if b in REQUIRED_BINARIES}
    packages |= {COMPANION_BINARIES[b] for b in missing_binaries(COMPANION_BINARIES)}
    order = ["mosquitto", "mosquitto-clients", "influxdb"]
    return sorted(packages, key=order.index)


def install_binaries() -> list[str]:
    """Make ``mosquitto``, ``mosquitto_passwd`` and ``influxd`` available.

    Returns the Debian packages installed (empty when nothing was missing).
    As root on Debian/Ubuntu runs ``apt-get update`` and ``apt-get install -y``
    for the missing packages (their output goes to stderr), then stops the
    system ``influxd`` the package may have started.  The machine's own
    Mosquitto on 1883 is never touched.  Otherwise raises
    :class:`InstallRequired` with the exact command.
    """
    missing = missing_binaries()
    if not missing:
        return []
    packages = _packages_for(missing)
    command = f"sudo apt-get update && sudo apt-get install -y {' '.join(packages)}"
    if not _can_apt():
        raise InstallRequired(missing, command)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
        rc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr, check=False).returncode
        if rc != 0:
            raise ServiceError(f"{' '.join(argv)} failed with exit code {rc}")
    if "influxdb" in packages:
        _stop_system_influxd()
    still = missing_binaries()
    if still:
        raise InstallRequired(still, command)
    return packages


def _stop_system_influxd() -> None:
    """Stop the system InfluxDB a fresh package install may have started (never Mosquitto)."""
    if find_binary("service"):
        try:
            subprocess.run(["service", "influxdb", "stop"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            pass
    for pid_file in (Path("/var/run/influxdb/influxd.pid"), Path("/run/influxdb/influxd.pid")):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        args = _cmdline(pid)
        if args and Path(args[0]).name == "influxd" and not _is_zombie(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


# ---------------------------------------------------------------- /proc helpers


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # the state follows the parenthesised command name, which may itself contain ')'
    return stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] in ("Z", "X")


def port_is_free(port: int, host: str = _LOOPBACK) -> bool:
    """True when nothing listens on host:port (a bind with SO_REUSEADDR succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port the kernel just handed out for 127.0.0.1 (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((_LOOPBACK, 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- managed processes


class ManagedProcess:
    """One service process started from a system binary, owned by exact PID.

    Subclasses say how to configure, run and probe the service.  The handle
    finds a process started earlier (by another ``lifewatch`` invocation)
    through ``<workdir>/<name>.pid`` and accepts it only if
    ``/proc/<pid>/cmdline`` still runs ``binary`` with this handle's config
    file.
    """

    name: str = ""
    binary: str = ""

    def __init__(self, workdir: Path | str):
        self.workdir = Path(workdir).absolute()
        self._popen: subprocess.Popen[bytes] | None = None

    # -- to be provided by subclasses

    @property
    def port(self) -> int:
        """The port clients use."""
        raise NotImplementedError

    def ports(self) -> dict[int, str]:
        """Every port the service binds -> the setting that chooses it."""
        raise NotImplementedError

    def argv(self, binary_path: str) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write the config (and any auxiliary file) into the work directory."""
        raise NotImplementedError

    def probe(self, timeout: float = 2.0) -> str | None:
        """None when the service answers as it should, else why not."""
        raise NotImplementedError

    def required_binaries(self) -> list[str]:
        return [self.binary]

    # -- paths

    @property
    def config_path(self) -> Path:
        return self.workdir / f"{self.name}.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.workdir / f"{self.name}.pid"

    # -- state

    def _owns(self, pid: int) -> bool:
        if pid <= 0 or _is_zombie(pid):
            return False
        args = _cmdline(pid)
        return bool(args) and Path(args[0]).name == self.binary and str(self.config_path) in args

    @property
    def pid(self) -> int | None:
        """PID of this service's live process, or None."""
        if self._popen is not None:
            if self._popen.poll() is None and self._owns(self._popen.pid):
                return self._popen.pid
            return None
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._owns(pid) else None

    def is_running(self) -> bool:
        return self.pid is not None

    def healthy(self, timeout: float = 2.0) -> bool:
        return self.probe(timeout) is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            data = self.log_path.read_bytes()[-16384:]
        except OSError:
            return "(no log yet)"
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    # -- lifecycle

    def preflight(self) -> None:
        """Check what :meth:`start` needs, without starting: binaries, settings, free ports."""
        missing = missing_binaries(self.required_binaries())
        if missing:
            raise InstallRequired(missing, "lifewatch services install   (or: sudo apt-get install -y "
                                  + " ".join(_packages_for(missing)) + ")")
        for port, variable in self.ports().items():
            if not port_is_free(port):
                raise PortInUse(self.name, port, variable)

    def start(self) -> bool:
        """Start the service unless it already runs; True if this call started it.

        Does not wait for health: call :meth:`wait_healthy`.
        """
        if self.is_running():
            return False
        self.preflight()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        binary_path = find_binary(self.binary)
        assert binary_path is not None  # preflight checked
        with open(self.log_path, "ab") as log:
            self._popen = subprocess.Popen(
                self.argv(binary_path),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        self.pid_path.write_text(f"{self._popen.pid}\n")
        return True

    def wait_healthy(self, timeout: float = 15.0) -> None:
        """Block until the health probe passes; raise :class:`ServiceUnhealthy` with the log tail."""
        deadline = time.monotonic() + timeout
        reason = "not started"
        while True:
            if self.pid is None:
                code = self._popen.poll() if self._popen is not None else None
                detail = f"exited with code {code}" if code is not None else "is not running"
                raise ServiceUnhealthy(self.name, detail, self.log_path, self.log_tail())
            remaining = deadline - time.monotonic()
            reason = self.probe(timeout=max(0.2, min(2.0, remaining))) or ""
            if not reason:
                return
            if time.monotonic() >= deadline:
                raise ServiceUnhealthy(self.name, f"no answer within {timeout:g}s ({reason})",
                                       self.log_path, self.log_tail())
            time.sleep(0.05)

    def _signal(self, sig: signal.Signals) -> int | None:
        pid = self.pid
        if pid is None:
            return None
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return None
        return pid

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self._popen is not None and self._popen.pid == pid:
                try:
                    self._popen.wait(timeout=max(0.0, min(0.05, deadline - time.monotonic())))
                    return True
                except subprocess.TimeoutExpired:
                    pass
            elif not self._owns(pid):
                return True
            else:
                time.sleep(0.05)
            if time.monotonic() >= deadline:
                return False

    def stop(self, timeout: float = STOP_GRACE) -> int | None:
        """SIGTERM the exact PID, SIGKILL after ``timeout``; return the PID stopped (None if none ran)."""
        pid = self._signal(signal.SIGTERM)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGCONT)  # a frozen process must wake up to terminate
            except ProcessLookupError:
                pass
            if not self._wait_gone(pid, timeout):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                if not self._wait_gone(pid, 5.0):
                    raise ServiceError(f"{self.name} (pid {pid}) survived SIGKILL")
        self._forget()
        return pid

    def kill(self) -> int | None:
        """SIGKILL the process (a crash, for fault injection); return its PID."""
        pid = self._signal(signal.SIGKILL)
        if pid is not None:
            self._wait_gone(pid, 5.0)
        self._forget()
        return pid

    def freeze(self) -> int | None:
        """SIGSTOP: the process keeps its sockets but answers nothing."""
        return self._signal(signal.SIGSTOP)

    def thaw(self) -> int | None:
        """SIGCONT after :meth:`freeze`."""
        return self._signal(signal.SIGCONT)

    def restart(self, timeout: float = 15.0) -> None:
        """Stop (if running), start again on the same ports and data, and wait until healthy."""
        self.stop()
        self.start()
        self.wait_healthy(timeout)

    def _forget(self) -> None:
        try:
            if self.pid_path.exists():
                text = self.pid_path.read_text().strip()
                if not text.isdigit() or not self._owns(int(text)):
                    self.pid_path.unlink()
        except OSError:
            pass
        if self._popen is not None and self._popen.poll() is not None:
            self._popen = None

    def describe(self) -> dict[str, object]:
        """Health report: running (this handle's process), pid, port, healthy, log, detail."""
        reason = self.probe()
        return {
            "running": self.is_running(),
            "pid": self.pid,
            "port": self.port,
            "healthy": reason is None,
            "log": str(self.log_path),
            "detail": reason or "",
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} port={self.port} pid={self.pid} workdir={self.workdir}>"


class MosquittoService(ManagedProcess):
    """Mosquitto 2.0 on 127.0.0.1:``port``; healthy when an MQTT CONNECT gets a successful CONNACK."""

    name = "mosquitto"
    binary = "mosquitto"

    def __init__(
        self,
        workdir: Path | str,
        port: int,
        *,
        allow_anonymous: bool,
        username: str = "",
        password: str = "",
        max_inflight: int = 20000,
        max_queued: int = 0,
        persistence: bool = True,
        port_variable: str = "LIFEWATCH_MQTT_PORT",
    ):
        super().__init__(workdir)
        if not allow_anonymous and not (username and password):
            raise ServiceConfigError(
                "outside demo mode the broker requires a login: set LIFEWATCH_MQTT_USERNAME and "
                "LIFEWATCH_MQTT_PASSWORD, or LIFEWATCH_DEMO=1 for anonymous access on loopback"
            )
        if username and ":" in username:
            raise ServiceConfigError("LIFEWATCH_MQTT_USERNAME may not contain ':'")
        self._port = port
        self.allow_anonymous = allow_anonymous
        self.username = username
        self.password = password
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.persistence = persistence
        self.port_variable = port_variable
        self.host = _LOOPBACK

    @property
    def port(self) -> int:
        return self._port

    def ports(self) -> dict[int, str]:
        return {self._port: self.port_variable}

    @property
    def password_path(self) -> Path | None:
        return self.workdir / "passwd" if self.username else None

    def required_binaries(self) -> list[str]:
        return ["mosquitto", "mosquitto_passwd"] if self.username else ["mosquitto"]

    def argv(self, binary_path: str) -> list[str]:
        return [binary_path, "-c", str(self.config_path)]

    def prepare(self) -> None:
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        if self.password_path is not None:
            self._write_password_file(self.password_path)
        self.config_path.write_text(
            mosquitto_conf(
                self.workdir,
                self._port,
                persistence=self.persistence,
                max_inflight=self.max_inflight,
                max_queued=self.max_queued,
                allow_anonymous=self.allow_anonymous,
                password_file=self.password_path,
            )
        )

    def _write_password_file(self, path: Path) -> None:
        tool = find_binary("mosquitto_passwd")
        if tool is None:
            raise InstallRequired(["mosquitto_passwd"], "lifewatch services install")
        path.unlink(missing_ok=True)
        res = subprocess.run([tool, "-b", "-c", str(path), self.username, self.password],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise ServiceError(f"mosquitto_passwd failed: {(res.stderr or res.stdout).strip()}")
        path.chmod(0o600)

    def probe(self, timeout: float = 2.0) -> str | None:
        return mqtt_probe(self.host, self._port, self.username, self.password, timeout)


class InfluxdService(ManagedProcess):
    """InfluxDB 1.x on 127.0.0.1:``http_port`` (RPC on ``rpc_port``); healthy when ``/ping`` answers 204."""

    name = "influxd"
    binary = "influxd"

    def __init__(
        self,
        workdir: Path | str,
        http_port: int,
        rpc_port: int,
        *,
        port_variables: tuple[str, str] = ("LIFEWATCH_INFLUX_URL", "LIFEWATCH_INFLUX_RPC_PORT"),
    ):
        super().__init__(workdir)
        self.http_port = http_port
        self.rpc_port = rpc_port
        self.port_variables = port_variables

    @property
    def port(self) -> int:
        return self.http_port

    @property
    def url(self) -> str:
        return f"http://{_LOOPBACK}:{self.http_port}"

    def ports(self) -> dict[int, str]:
        return {self.http_port: self.port_variables[0], self.rpc_port: self.port_variables[1]}

    def argv(self, binary_path: str) -> list[str]:
        return [binary_path, "run", "-config", str(self.config_path)]

    def prepare(self) -> None:
        self.config_path.write_text(influxd_conf(self.workdir, self.http_port, self.rpc_port))

    def probe(self, timeout: float = 2.0) -> str | None:
        return influx_probe(self.url, timeout)


def mqtt_probe(host: str, port: int, username: str = "", password: str = "", timeout: float = 2.0) -> str | None:
    """None if host:port accepts TCP and answers an MQTT CONNECT with a successful CONNACK."""
    import paho.mqtt.client as mqtt

    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"TCP connect to {host}:{port} failed: {exc}"
    result: dict[str, object] = {}

    def on_connect(client, userdata, flags, reason_code, properties):  # noqa: ANN001
        result["rc"] = reason_code

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"lifewatch-health-{uuid.uuid4().hex[:12]}",
                         clean_session=True)
    client.on_connect = on_connect
    client.connect_timeout = timeout
    if username:
        client.username_pw_set(username, password)
    deadline = time.monotonic() + timeout
    try:
        client.connect(host, port, keepalive=max(5, int(timeout) + 1))
        while "rc" not in result and time.monotonic() < deadline:
            client.loop(timeout=0.05)
    except (OSError, ValueError) as exc:
        return f"MQTT connect to {host}:{port} failed: {exc}"
    finally:
        if "rc" in result:
            client.disconnect()
            client.loop(timeout=0.01)
        # the client's sockets close when it is released (paho's __del__)
    rc = result.get("rc")
    if rc is None:
        return f"no CONNACK from {host}:{port} within {timeout:g}s"
    if getattr(rc, "is_failure", False):
        return f"broker refused the connection: {rc}"
    return None


def influx_probe(url: str, timeout: float = 2.0) -> str | None:
    """None if ``<url>/ping`` answers 204."""
    try:
        resp = httpx.get(url.rstrip("/") + "/ping", timeout=timeout)
    except httpx.HTTPError as exc:
        return f"GET {url}/ping failed: {type(exc).__name__}: {exc}"
    if resp.status_code != 204:
        return f"GET {url}/ping answered {resp.status_code}"
    return None


# ---------------------------------------------------------------- from settings


def services_dir(settings: Settings) -> Path:
    return Path(settings.state_dir).absolute() / "services"


def mosquitto_service(settings: Settings) -> MosquittoService:
    """The broker ``lifewatch services up`` runs for these settings."""
    return MosquittoService(
        services_dir(settings) / "mosquitto",
        settings.mqtt_port,
        allow_anonymous=settings.demo,
        username=settings.mqtt_username,
        password=settings.mqtt_password,
        max_inflight=settings.mqtt_max_inflight,
        max_queued=settings.mqtt_max_queued,
    )


def influxd_service(settings: Settings) -> InfluxdService:
    """The database ``lifewatch services up`` runs for these settings."""
    return InfluxdService(services_dir(settings) / "influxd", settings.influx_port, settings.influx_rpc_port)


def service_for(settings: Settings, name: str) -> ManagedProcess:
    if name == "mosquitto":
        return mosquitto_service(settings)
    if name == "influxd":
        return influxd_service(settings)
    raise ValueError(f"unknown service {name!r}; expected one of {', '.join(SERVICE_NAMES)}")


def service_health(settings: Settings, only: str | None = None) -> dict[str, dict[str, object]]:
    """Per service: running (a process ``services up`` started), pid, port, healthy, log, detail.

    ``healthy`` probes the port itself, so a broker or database someone else
    runs there (e.g. ``docker compose``) also counts as healthy with
    ``running`` false.  Never raises for a service that is merely down.
    """
    out: dict[str, dict[str, object]] = {}
    for name in ((only,) if only else SERVICE_NAMES):
        try:
            out[name] = service_for(settings, name).describe()
        except ServiceConfigError:
            # no credentials outside demo mode: report the process anyway, probing anonymously
            svc = MosquittoService(services_dir(settings) / "mosquitto", settings.mqtt_port, allow_anonymous=True)
            out[name] = svc.describe()
    return out


# ---------------------------------------------------------------- CLI


def _err(message: str) -> None:
    print(f"lifewatch services: {message}", file=sys.stderr)


def _where(svc: ManagedProcess) -> str:
    if isinstance(svc, InfluxdService):
        return f"{svc.url}  (rpc {_LOOPBACK}:{svc.rpc_port})"
    return f"mqtt://{_LOOPBACK}:{svc.port}"


def _up(settings: Settings, names: list[str]) -> int:
    svcs = [service_for(settings, n) for n in names]
    todo = [s for s in svcs if not s.is_running()]
    for s in todo:  # fail before starting anything
        s.preflight()
    for s in svcs:
        if s in todo:
            s.start()
            s.wait_healthy()
            state = "started"
        else:
            s.wait_healthy(timeout=5.0)
            state = "already running"
        print(f"{s.name:<10} {state} (pid {s.pid})  {_where(s)}  log {s.log_path}")
    if "influxd" in names:
        from lifewatch.influx import InfluxClient, InfluxError

        try:
            with InfluxClient.from_settings(settings) as client:
                client.create_database()
        except InfluxError as exc:
            raise ServiceError(f"could not create database {settings.influx_db!r} at {settings.influx_url}: {exc}") from None
        print(f"database   {settings.influx_db!r} ready at {settings.influx_url}")
    if "mosquitto" in names and settings.mqtt_host not in (_LOOPBACK, "localhost"):
        print(f"note: LIFEWATCH_MQTT_HOST={settings.mqtt_host} is not this local broker", file=sys.stderr)
    return 0


def _down(settings: Settings, names: list[str]) -> int:
    for name in names:
        try:
            svc = service_for(settings, name)
        except ServiceConfigError:
            svc = MosquittoService(services_dir(settings) / "mosquitto", settings.mqtt_port, allow_anonymous=True)
        pid = svc.stop()
        print(f"{name:<10} " + (f"stopped (pid {pid})" if pid is not None else "was not running"))
    return 0


def _status(settings: Settings, names: list[str], as_json: bool) -> int:
    report: dict[str, dict[str, object]] = {}
    for name in names:
        report.update(service_health(settings, only=name))
    ok = all(r["healthy"] for r in report.values())
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        for name, r in report.items():
            state = "running" if r["running"] else "stopped"
            pid = f"pid {r['pid']}" if r["pid"] else "pid -"
            health = "healthy" if r["healthy"] else f"unhealthy ({r['detail']})"
            print(f"{name:<10} {state:<8} {pid:<10} port {r['port']:<6} {health}  log {r['log']}")
    return 0 if ok else 3


def _install() -> int:
    installed = install_binaries()
    if installed:
        print(f"installed: {' '.join(installed)}")
    for b in REQUIRED_BINARIES:
        print(f"{b:<17} {find_binary(b) or 'MISSING'}")
    return 0 if not missing_binaries() else 1


def cli(args: argparse.Namespace, settings: Settings) -> int:
    """``lifewatch services up|down|status|install [--only NAME] [--json]``.

    Exit codes: 0 ok; 1 an error (printed to stderr); 3 ``status`` found a
    service unhealthy.
    """
    only = getattr(args, "only", None)
    names = [only] if only else list(SERVICE_NAMES)
    try:
        if args.action == "up":
            return _up(settings, names)
        if args.action == "down":
            return _down(settings, names)
        if args.action == "status":
            return _status(settings, names, bool(getattr(args, "json", False)))
        if args.action == "install":
            return _install()
    except ServiceError as exc:
        _err(str(exc))
        return 1
    _err(f"unknown action {args.action!r}")
    return 2


__all__ = [
    "COMPANION_BINARIES",
    "REQUIRED_BINARIES",
    "SERVICE_NAMES",
    "InfluxdService",
    "InstallRequired",
    "ManagedProcess",
    "MosquittoService",
    "PortInUse",
    "ServiceConfigError",
    "ServiceError",
    "ServiceUnhealthy",
    "cli",
    "find_binary",
    "free_port",
    "influx_probe",
    "influxd_conf",
    "influxd_service",
    "install_binaries",
    "missing_binaries",
    "mosquitto_conf",
    "mosquitto_service",
    "mqtt_probe",
    "port_is_free",
    "service_for",
    "service_health",
    "services_dir",
]

#!/usr/bin/env python3
"""Starts the app in its container: alone, or with a Dapr sidecar and the two services it needs.

    python docker/supervise.py        # what the image runs

The mode comes from DACA_RUNTIME (`local` or `dapr`); unset, it is `dapr` when the image carries
daprd (built with `--build-arg WITH_DAPR=true`) and `local` otherwise.

- local: the process replaces itself with `python app.py`, so the app is the container's main process.
- dapr: starts placement and scheduler (Dapr Workflow runs on actors and timers, which need both),
  then daprd with the resources in components/, waits until daprd reports its components ready,
  then starts the app with DACA_RUNTIME=dapr. When any of the four exits, the others are stopped
  and the supervisor exits non-zero, so the Space restarts the container instead of serving half a
  system. SIGTERM/SIGINT stop all four, app first.

Standard library only: it must run before anything else in the image is known to work.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

log = logging.getLogger("daca_kit.supervise")

APP_ID = "daca-kit"
DEFAULT_APP_PORT = 7860
DAPR_HTTP_PORT = 3500
DAPR_GRPC_PORT = 50001
PLACEMENT_PORT = 50005
SCHEDULER_PORT = 50006
# placement and scheduler both default their health server to 8080 (and metrics to 9090, switched
# off below); in one container each needs its own port.
PLACEMENT_HEALTHZ_PORT = 58080
SCHEDULER_HEALTHZ_PORT = 58081
PLACEMENT_RAFT_PORT = 8201
SCHEDULER_ETCD_CLIENT_PORT = 2379
SCHEDULER_ETCD_PEER_PORT = 2380
LOOPBACK = "127.0.0.1"
# Ready once components are loaded. Not /v1.0/healthz: that one also waits for the app to listen,
# and the app is started only after this answers.
READY_PATH = "/v1.0/healthz/outbound"

# The env secret store reads daprd's own environment, so daprd gets only what the components
# reference (plus tracing settings), never the app's Gemini key, database URL or admin token.
SIDECAR_PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")
SIDECAR_PASSTHROUGH_PREFIXES = ("OTEL_EXPORTER_OTLP_",)


class SetupError(Exception):
    """A setting is missing or wrong; the message says what to set."""


@dataclass(frozen=True)
class Child:
    """One process to run: `Child("daprd", ["daprd", "--app-id", "daca-kit"], env={...})`."""

    name: str
    argv: list[str]
    env: Mapping[str, str] | None = None


def choose_mode(env: Mapping[str, str], daprd: str | None) -> str:
    """Return "local" or "dapr" from DACA_RUNTIME and whether daprd is installed."""
    wanted = env.get("DACA_RUNTIME", "").strip().lower()
    if not wanted:
        return "dapr" if daprd else "local"
    if wanted == "local":
        return "local"
    if wanted == "dapr":
        if not daprd:
            raise SetupError(
                "DACA_RUNTIME=dapr, but this image has no daprd: rebuild it with "
                "--build-arg WITH_DAPR=true, or set DACA_RUNTIME=local."
            )
        return "dapr"
    raise SetupError(f"DACA_RUNTIME must be 'local' or 'dapr', not {wanted!r}.")


def base_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables any Dapr process may see: system ones and tracing settings, no app secrets."""
    out = {name: env[name] for name in SIDECAR_PASSTHROUGH if name in env}
    out.update({k: v for k, v in env.items() if k.startswith(SIDECAR_PASSTHROUGH_PREFIXES)})
    return out


def sidecar_env(env: Mapping[str, str]) -> dict[str, str]:
    """Environment for daprd: the variables components/*.yaml reference, derived from the app's settings.

    REDIS_URL (redis:// or rediss://) becomes REDIS_HOST (host:port), REDIS_USERNAME, REDIS_PASSWORD and
    REDIS_ENABLE_TLS; AMQP_URL passes through. Secrets are never put in an error message.
    """
    missing = [name for name in ("REDIS_URL", "AMQP_URL") if not env.get(name, "").strip()]
    if missing:
        raise SetupError(
            f"Dapr mode needs {' and '.join(missing)}: set REDIS_URL to the Redis TCP address "
            "(redis:// locally, rediss://default:PASSWORD@HOST:6379 for Upstash; its HTTPS REST URL cannot "
            "serve Dapr) and AMQP_URL to the broker (amqp:// locally, amqps:// for CloudAMQP), as Space "
            "secrets or environment variables."
        )
    redis = urlsplit(env["REDIS_URL"].strip())
    if redis.scheme not in ("redis", "rediss"):
        raise SetupError(
            f"REDIS_URL must start with redis:// or rediss://, not {redis.scheme or 'no scheme'}:// "
            "(Dapr's Redis state store needs the TCP address, not the Upstash REST URL)."
        )
    try:
        port = redis.port or 6379
    except ValueError:
        raise SetupError("REDIS_URL has a port that is not a number: use HOST:PORT, e.g. :6379.") from None
    if not redis.hostname:
        raise SetupError("REDIS_URL has no host: use redis://HOST:PORT or rediss://USER:PASSWORD@HOST:PORT.")
    amqp_scheme = urlsplit(env["AMQP_URL"].strip()).scheme
    if amqp_scheme not in ("amqp", "amqps"):
        raise SetupError(
            f"AMQP_URL must start with amqp:// or amqps://, not {amqp_scheme or 'no scheme'}://."
        )
    host = f"[{redis.hostname}]" if ":" in redis.hostname else redis.hostname
    out = base_env(env)
    out.update(
        REDIS_HOST=f"{host}:{port}",
        REDIS_USERNAME=unquote(redis.username or ""),
        REDIS_PASSWORD=unquote(redis.password or ""),
        REDIS_ENABLE_TLS="true" if redis.scheme == "rediss" else "false",
        AMQP_URL=env["AMQP_URL"].strip(),
        # The address daprd registers with placement: everything runs in this one container.
        DAPR_HOST_IP=LOOPBACK,
    )
    return out


def dapr_children(
    env: Mapping[str, str],
    *,
    resources: Path,
    config: Path,
    data_dir: Path,
    app_port: int = DEFAULT_APP_PORT,
    bin_dir: Path | None = None,
) -> list[Child]:
    """placement, scheduler and daprd, in start order, all listening on loopback only."""

    def exe(name: str) -> str:
        return str(bin_dir / name) if bin_dir else name

    daprd_env = sidecar_env(env)
    # placement and scheduler reference no component, so they get none of the secrets.
    control_env = base_env(env)
    placement = Child(
        "placement",
        [
            exe("placement"),
            "--listen-address", LOOPBACK,
            "--port", str(PLACEMENT_PORT),
            "--initial-cluster", f"dapr-placement-0={LOOPBACK}:{PLACEMENT_RAFT_PORT}",
            "--healthz-listen-address", LOOPBACK,
            "--healthz-port", str(PLACEMENT_HEALTHZ_PORT),
            "--enable-metrics=false",
        ],
        env=control_env,
    )  # fmt: skip
    scheduler = Child(
        "scheduler",
        [
            exe("scheduler"),
            "--listen-address", LOOPBACK,
            "--port", str(SCHEDULER_PORT),
            # It would otherwise tell daprd to reach it at the container's hostname.
            "--override-broadcast-host-port", f"{LOOPBACK}:{SCHEDULER_PORT}",
            "--etcd-data-dir", str(data_dir / "scheduler"),
            "--etcd-client-listen-address", LOOPBACK,
            "--etcd-client-port", str(SCHEDULER_ETCD_CLIENT_PORT),
            "--etcd-initial-cluster", f"dapr-scheduler-server-0=http://{LOOPBACK}:{SCHEDULER_ETCD_PEER_PORT}",
            "--healthz-listen-address", LOOPBACK,
            "--healthz-port", str(SCHEDULER_HEALTHZ_PORT),
            "--enable-metrics=false",
        ],
        env=control_env,
    )  # fmt: skip
    daprd = Child(
        "daprd",
        [
            exe("daprd"),
            "--app-id", APP_ID,
            "--app-port", str(app_port),
            "--app-protocol", "http",
            "--app-channel-address", LOOPBACK,
            "--resources-path", str(resources),
            "--config", str(config),
            "--dapr-http-port", str(DAPR_HTTP_PORT),
            "--dapr-grpc-port", str(DAPR_GRPC_PORT),
            "--dapr-listen-addresses", LOOPBACK,
            "--placement-host-address", f"{LOOPBACK}:{PLACEMENT_PORT}",
            "--scheduler-host-address", f"{LOOPBACK}:{SCHEDULER_PORT}",
            "--enable-metrics=false",
        ],
        env=daprd_env,
    )  # fmt: skip
    return [placement, scheduler, daprd]


def app_child(env: Mapping[str, str], *, python: str, app: Path, app_port: int = DEFAULT_APP_PORT) -> Child:
    """The app in Dapr mode: its own settings, plus where its sidecar listens."""
    app_env = dict(env)
    app_env.update(
        DACA_RUNTIME="dapr",
        PORT=str(app_port),
        DAPR_HTTP_PORT=str(DAPR_HTTP_PORT),
        DAPR_GRPC_PORT=str(DAPR_GRPC_PORT),
    )
    return Child("app", [python, str(app)], env=app_env)


class Supervisor:
    """Runs children until one exits or a stop is requested, then stops the rest (last started first).

    sup = Supervisor()
    code = sup.run(dapr_children(...), app_child(...), ready_url, ready_timeout=90)
    """

    def __init__(self, *, grace: float = 10.0, poll: float = 0.2) -> None:
        self.grace = grace
        self.poll = poll
        # The sidecar is on loopback: never send the readiness probe through an HTTP(S)_PROXY.
        self.http = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.running: list[tuple[Child, subprocess.Popen[bytes]]] = []
        self.exited: tuple[str, int] | None = None
        self.stop_signal: int | None = None

    def request_stop(self, signum: int = signal.SIGTERM, frame: object = None) -> None:
        """Signal handler: ask the loop to stop everything and return."""
        self.stop_signal = signum

    def start(self, child: Child) -> None:
        log.info("starting %s", child.name)
        proc = subprocess.Popen(
            child.argv,
            env=dict(child.env) if child.env is not None else None,
            stdin=subprocess.DEVNULL,
            # Own process group: a terminal's Ctrl-C reaches only the supervisor, which stops the
            # children in order instead of all at once.
            start_new_session=True,
        )
        self.running.append((child, proc))

    def check(self) -> bool:
        """True while every child runs; records the first one that exited."""
        if self.exited is None:
            for child, proc in self.running:
                code = proc.poll()
                if code is not None:
                    self.exited = (child.name, code)
                    log.error("%s exited with code %s; stopping the others", child.name, code)
                    break
        reap_orphans({proc.pid for _, proc in self.running})
        return self.exited is None

    def wait_ready(self, url: str, timeout: float) -> bool:
        """Poll `url` until it answers 2xx; False on timeout, a stop request or a child exiting."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stop_signal is not None or not self.check():
                return False
            try:
                with self.http.open(url, timeout=2) as response:
                    if 200 <= response.status < 300:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(self.poll)
        log.error(
            "the Dapr sidecar did not report ready at %s within %.0fs: see daprd's log above "
            "(usually a component that cannot reach Redis or RabbitMQ)",
            url,
            timeout,
        )
        return False

    def watch(self) -> int:
        """Block until a child exits (its code, or 1 if it was 0) or a stop is requested (0)."""
        while self.stop_signal is None and self.check():
            time.sleep(self.poll)
        return self.result()

    def result(self) -> int:
        if self.exited is not None:
            return self.exited[1] or 1
        return 0 if self.stop_signal is not None else 1

    def stop_all(self) -> None:
        """SIGTERM each live child, newest first; SIGKILL what is left after the grace period."""
        live = [(c, p) for c, p in reversed(self.running) if p.poll() is None]
        for child, proc in live:
            log.info("stopping %s", child.name)
            signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", child.name, self.grace)
                signal_group(proc, signal.SIGKILL)
                proc.wait()
        for _, proc in self.running:
            proc.wait()

    def run(self, sidecars: Sequence[Child], app: Child, ready_url: str, ready_timeout: float) -> int:
        """Start the sidecars, wait for ready, start the app, watch; always stops everything."""
        try:
            for child in sidecars:
                self.start(child)
            if not self.wait_ready(ready_url, ready_timeout):
                return self.result()
            self.start(app)
            return self.watch()
        finally:
            self.stop_all()


def signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    """Signal the child's whole process group (it leads one), so helpers it spawned stop too."""
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass


def reap_orphans(tracked: set[int]) -> None:
    """As PID 1, collect exited grandchildren that were re-parented to us (never a tracked child)."""
    if os.getpid() != 1:
        return
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid in tracked:
            return  # nothing to reap, or a child whose status Popen must read itself
        os.waitpid(info.si_pid, 0)


def app_port(env: Mapping[str, str]) -> int:
    raw = env.get("PORT", "").strip() or str(DEFAULT_APP_PORT)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SetupError(f"PORT must be a TCP port number such as 7860, not {raw!r}.")
    return int(raw)


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    execv: Callable[[str, list[str]], object] = os.execv,
) -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ready-timeout", type=float, default=90.0, help="seconds to wait for daprd")
    parser.add_argument("--resources", type=Path, default=root / "components")
    parser.add_argument("--config", type=Path, default=root / "components" / "config.yaml")
    args = parser.parse_args(argv)
    env = os.environ if env is None else env
    logging.basicConfig(level=logging.INFO, format="supervise: %(levelname)s %(message)s")
    app = root / "app.py"
    try:
        mode = choose_mode(env, shutil.which("daprd", path=env.get("PATH")))
        if mode == "local":
            log.info("local mode: starting the app alone")
            execv(sys.executable, [sys.executable, str(app)])
            return 0  # reached only when execv is a stand-in (tests)
        port = app_port(env)
        home = Path(env.get("HOME") or root)
        sidecars = dapr_children(
            env, resources=args.resources, config=args.config, data_dir=home / ".dapr", app_port=port
        )
        app_proc = app_child(env, python=sys.executable, app=app, app_port=port)
    except SetupError as exc:
        log.error("%s", exc)
        return 2
    # The scheduler's embedded etcd keeps workflow timers and reminders here.
    (home / ".dapr" / "scheduler").mkdir(parents=True, exist_ok=True)
    sup = Supervisor()
    signal.signal(signal.SIGTERM, sup.request_stop)
    signal.signal(signal.SIGINT, sup.request_stop)
    log.info("dapr mode: starting placement, scheduler and daprd, then the app")
    return sup.run(sidecars, app_proc, f"http://{LOOPBACK}:{DAPR_HTTP_PORT}{READY_PATH}", args.ready_timeout)


if __name__ == "__main__":
    sys.exit(main())

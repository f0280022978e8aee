"""The Space image keeps its invariants, and its supervisor starts and stops what it should.

The Dockerfile is parsed, not built (no Docker engine here): multi-stage, locked install with hashes,
uid 1000, port 7860, a HEALTHCHECK, no compilers in the final stage, no secrets in ENV/ARG, the
WITH_DAPR build argument. docker/supervise.py is run for real with stand-in child processes, since
daprd, placement and scheduler are not on this machine.
"""

from __future__ import annotations

import http.server
import importlib.util
import logging
import os
import py_compile
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
SUPERVISOR = ROOT / "docker" / "supervise.py"

SETTINGS_WITH_SECRETS = {
    "DATABASE_URL", "DB_CONNECTION", "REDIS_URL", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN",
    "AMQP_URL", "GEMINI_API_KEY", "DACA_REVIEWER_PASSWORD", "DACA_ADMIN_TOKEN",
}  # fmt: skip
SECRET_NAME = re.compile(r"KEY|TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL", re.IGNORECASE)
CREDENTIAL_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)
COMPILERS = re.compile(
    r"(?<![\w.-])(gcc|g\+\+|cc|c\+\+|clang|make|cmake|build-essential|rustc|cargo|gfortran)(?![\w.-])"
)

# --- A small Dockerfile reader -------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comment lines are dropped even inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.partition(" ")
        out.append((keyword.upper(), args.strip()))
        current = ""
    return out


def stages(text: str) -> list[Stage]:
    found: list[Stage] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            parts = [p for p in args.split() if not p.startswith("--")]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(found))
            found.append(Stage(base=parts[0], name=name))
        elif found:
            found[-1].instructions.append((keyword, args))
    return found


def env_pairs(args: str) -> list[tuple[str, str]]:
    """ENV/ARG arguments as (name, value); ARG without a default gives ""."""
    words = shlex.split(args)
    if len(words) >= 2 and "=" not in words[0]:  # legacy `ENV NAME value`
        return [(words[0], " ".join(words[1:]))]
    return [(w.partition("=")[0], w.partition("=")[2]) for w in words]


def dockerfile_problems(text: str) -> list[str]:
    """Every invariant of the Space image that `text` breaks (empty when it keeps them all)."""
    found: list[str] = []
    all_stages = stages(text)
    if len(all_stages) < 2:
        return ["multi-stage: the final image must not carry the build tools; use a builder stage"]
    final = all_stages[-1]
    if not final.base.startswith("python:3.11-slim"):
        found.append(f"final stage: base python:3.11-slim, not {final.base}")

    # The venv is copied from a stage with the same base, so its interpreter path and ABI match.
    for args in final.all("COPY"):
        source = re.search(r"--from=(\S+)", args)
        if source and "/opt/venv" in args:
            builder = next((s for s in all_stages if s.name == source.group(1)), None)
            if builder is None or builder.base != final.base:
                found.append("venv: copy it from a stage built on the same base image as the final stage")

    # Locked install: hashes required, no dependency resolution, then the package itself without deps.
    build_runs = [args for stage in all_stages[:-1] for args in stage.all("RUN")]
    if not any("requirements.lock" in r and "--require-hashes" in r and "--no-deps" in r for r in build_runs):
        found.append("install: the builder must install requirements.lock with --require-hashes --no-deps")
    if not any(re.search(r"install\b.*--no-deps\s+\.(\s|$|&)", r) for r in build_runs):
        found.append("install: the builder must install the package itself with --no-deps")

    # Non-root uid 1000, set before the command runs.
    runs = " ".join(final.all("RUN"))
    user_made = re.search(r"useradd\b[^&;|]*(?:-u|--uid)\s+1000\b[^&;|]*?\s(\w+)(?:\s|$|&|;)", runs)
    users = final.all("USER")
    allowed_users = {"1000", "1000:1000"} | (
        {user_made.group(1), f"{user_made.group(1)}:{user_made.group(1)}"} if user_made else set()
    )
    if not users or users[-1] not in allowed_users:
        found.append("user: the final stage must run as uid 1000 (useradd -m -u 1000 user; USER user)")
    keywords = [kw for kw, _ in final.instructions]
    if (
        users
        and "CMD" in keywords
        and keywords.index("CMD") < max(i for i, kw in enumerate(keywords) if kw == "USER")
    ):
        found.append("user: USER must come before CMD")
    copies = [a for a in final.all("COPY") if "--from=" not in a]
    if any("--chown=" not in a for a in copies):
        found.append("files: COPY the app files with --chown to the uid 1000 user")

    # Port, health check.
    if not any("7860" in a.split() for a in final.all("EXPOSE")):
        found.append("port: EXPOSE 7860")
    if ("PORT", "7860") not in [p for a in final.all("ENV") for p in env_pairs(a)]:
        found.append("port: ENV PORT=7860")
    checks = final.all("HEALTHCHECK")
    if not checks or "/health" not in checks[-1] or checks[-1].upper().startswith("NONE"):
        found.append("health: a HEALTHCHECK that calls /health")
    elif re.search(r"\b(curl|wget)\b", checks[-1]):
        found.append("health: call /health with python, the slim image has no curl")

    # No compilers in what ships.
    for args in final.all("RUN"):
        installs = re.search(r"apt-get\s+install|apk\s+add|yum\s+install|dnf\s+install", args)
        compiler = COMPILERS.search(args)
        if installs and compiler:
            found.append(f"final stage: no compilers or build tools ({compiler.group(0)})")

    # No secrets baked in, in any stage or before the first: a Space passes them at run time.
    for keyword, args in instructions(text):
        if keyword not in ("ENV", "ARG"):
            continue
        for name, value in env_pairs(args):
            if name in SETTINGS_WITH_SECRETS or SECRET_NAME.search(name):
                found.append(f"secrets: {keyword} {name} bakes a secret into the image; pass it at run time")
            elif CREDENTIAL_URL.search(value):
                found.append(f"secrets: {keyword} {name} holds a URL with user:password")

    # The Dapr variant: build arguments declared before the first FROM or in any stage.
    declared = [args for keyword, args in instructions(text) if keyword == "ARG"]
    build_args = dict(pair for args in declared for pair in env_pairs(args))
    if build_args.get("WITH_DAPR") != "false":
        found.append("dapr: ARG WITH_DAPR=false (true adds daprd, placement and scheduler)")
    if not build_args.get("DAPR_VERSION"):
        found.append("dapr: ARG DAPR_VERSION with a default")
    command = (final.all("CMD") or final.all("ENTRYPOINT") or [""])[-1]
    if "docker/supervise.py" not in command:
        found.append("command: run docker/supervise.py (plain: exec app.py; Dapr: supervise the sidecar)")
    if not any("docker/supervise.py" in a for a in copies):
        found.append("command: COPY docker/supervise.py into the final stage")
    return found


# --- The Dockerfile -----------------------------------------------------------------------------------


def test_dockerfile_keeps_its_invariants() -> None:
    assert dockerfile_problems(DOCKERFILE.read_text(encoding="utf-8")) == []


def test_the_dapr_runtime_is_on_the_sdks_minor_release() -> None:
    declared = [
        args for keyword, args in instructions(DOCKERFILE.read_text(encoding="utf-8")) if keyword == "ARG"
    ]
    runtime = dict(pair for args in declared for pair in env_pairs(args))["DAPR_VERSION"]
    lock = (DOCKERFILE.parent / "requirements.lock").read_text(encoding="utf-8")
    sdk = re.search(r"^dapr==(\d+\.\d+)\.", lock, re.M)
    assert sdk, "requirements.lock pins no dapr SDK"
    assert runtime.startswith(sdk.group(1) + "."), (
        f"daprd {runtime} and the dapr SDK {sdk.group(1)}.x drifted apart"
    )


def test_dapr_binaries_are_fetched_in_a_build_stage_and_checked() -> None:
    *build, final = stages(DOCKERFILE.read_text(encoding="utf-8"))
    fetch = " ".join(a for s in build for a in s.all("RUN") if "daprd" in a)
    for binary in ("daprd", "placement", "scheduler"):
        assert binary in fetch
    assert "sha256sum -c" in fetch
    assert not [a for a in final.all("RUN") if "dapr" in a], "nothing Dapr-related runs in the final stage"


def test_every_shell_run_parses() -> None:
    for keyword, args in instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if keyword == "RUN" and not args.startswith("["):
            result = subprocess.run(["sh", "-n", "-c", args], capture_output=True, text=True)
            assert result.returncode == 0, (args, result.stderr)


@pytest.mark.parametrize(("with_dapr", "code"), [("false", 0), ("yes", 1)])
def test_the_dapr_stage_downloads_nothing_unless_asked(tmp_path: Path, with_dapr: str, code: int) -> None:
    # Run the dapr stage's script with /out moved into tmp_path; "true" would download, so it is not run.
    (fetch,) = [
        a for s in stages(DOCKERFILE.read_text(encoding="utf-8")) for a in s.all("RUN") if "daprd" in a
    ]
    out = tmp_path / "out"
    env = {"PATH": os.environ["PATH"], "WITH_DAPR": with_dapr, "DAPR_VERSION": "0.0.0"}
    result = subprocess.run(
        ["sh", "-c", fetch.replace("/out", str(out))], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == code, result.stderr
    assert out.is_dir() and not any(out.iterdir())
    if code:
        assert "WITH_DAPR must be true or false" in result.stderr


BAD_DOCKERFILE = """\
FROM python:3.11
RUN apt-get update && apt-get install -y build-essential
ENV GEMINI_API_KEY=AIza-not-a-real-key
COPY . /app
RUN pip install -r requirements.txt
EXPOSE 8000
CMD ["python", "app.py"]
"""


def test_checker_rejects_a_naive_dockerfile() -> None:
    assert dockerfile_problems(BAD_DOCKERFILE) == [
        "multi-stage: the final image must not carry the build tools; use a builder stage"
    ]
    two_stage = "FROM python:3.11 AS builder\nRUN true\n" + BAD_DOCKERFILE
    found = " | ".join(dockerfile_problems(two_stage))
    for expected in ("final stage: base", "--require-hashes", "uid 1000", "EXPOSE 7860", "HEALTHCHECK",
                     "compilers", "GEMINI_API_KEY", "WITH_DAPR", "supervise.py"):  # fmt: skip
        assert expected in found


def mutated(old: str, new: str) -> str:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(old, text, flags=re.MULTILINE), f"the Dockerfile no longer has {old!r}"
    return re.sub(old, new, text, count=1, flags=re.MULTILINE)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (r"--require-hashes ", "", "--require-hashes"),
        (r"^USER user$", "", "uid 1000"),
        (r"^USER user$", "USER root", "uid 1000"),
        (r"useradd -m -u 1000 user", "useradd -m -u 1001 user", "uid 1000"),
        (r"^EXPOSE 7860$", "EXPOSE 8080", "EXPOSE 7860"),
        (r"PORT=7860", "PORT=8080", "ENV PORT=7860"),
        (r"^HEALTHCHECK[^\n]*\\\n[^\n]*\n", "", "HEALTHCHECK"),
        (r"^USER user$", "RUN apt-get update && apt-get install -y gcc\nUSER user", "compilers"),
        (r"^USER user$", "ENV DACA_ADMIN_TOKEN=changeme\nUSER user", "DACA_ADMIN_TOKEN"),
        (r"^USER user$", "ENV DB_DSN=postgresql://app:pw@db/app\nUSER user", "user:password"),
        (
            r"^FROM python:3.11-slim AS builder",
            "ARG UPSTASH_REDIS_REST_TOKEN\nFROM python:3.11-slim AS builder",
            "UPSTASH",
        ),
        (r"ARG WITH_DAPR=false", "ARG WITH_DAPR=true", "WITH_DAPR"),
        (r"COPY --chown=user:user app.py", "COPY app.py", "--chown"),
        (r"FROM python:3.11-slim AS builder", "FROM python:3.12-slim AS builder", "same base image"),
    ],
)
def test_checker_rejects_each_broken_invariant(old: str, new: str, expected: str) -> None:
    found = dockerfile_problems(mutated(old, new))
    assert any(expected in problem for problem in found), found


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()}
    assert {".git", ".env", ".venv", "data", "build", "test-artifacts"} <= ignored


def test_supervisor_is_an_executable_python_script(tmp_path: Path) -> None:
    assert SUPERVISOR.read_text(encoding="utf-8").startswith("#!/usr/bin/env python3\n")
    assert os.access(SUPERVISOR, os.X_OK)
    py_compile.compile(str(SUPERVISOR), cfile=str(tmp_path / "supervise.pyc"), doraise=True)


# --- The supervisor -----------------------------------------------------------------------------------


def load_supervisor() -> Any:
    """docker/supervise.py as a module (it is a script, not part of the package)."""
    name = "daca_supervise"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SUPERVISOR)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


sv = load_supervisor()

UPSTASH = "rediss://default:s3cr3t-token@eu1-fine-cat-12345.upstash.io:6379"
CLOUDAMQP = "amqps://user:amqp-pass@goose.rmq.cloudamqp.com/vhost"
SPACE_ENV = {
    "PATH": "/opt/venv/bin:/usr/bin",
    "HOME": "/home/user",
    "REDIS_URL": UPSTASH,
    "AMQP_URL": CLOUDAMQP,
    "GEMINI_API_KEY": "AIza-not-real",
    "DATABASE_URL": "cockroachdb://u:p@host:26257/defaultdb",
    "DACA_ADMIN_TOKEN": "admin-not-real",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example:4318",
}


@pytest.mark.parametrize(
    ("runtime", "daprd", "mode"),
    [
        ("", None, "local"),
        ("", "/usr/local/bin/daprd", "dapr"),
        ("local", "/usr/local/bin/daprd", "local"),
        ("dapr", "/usr/local/bin/daprd", "dapr"),
        (" Dapr ", "/usr/local/bin/daprd", "dapr"),
    ],
)
def test_mode_follows_daca_runtime_then_the_image(runtime: str, daprd: str | None, mode: str) -> None:
    assert sv.choose_mode({"DACA_RUNTIME": runtime}, daprd) == mode


def test_dapr_mode_without_daprd_says_how_to_get_it() -> None:
    with pytest.raises(sv.SetupError, match="WITH_DAPR=true"):
        sv.choose_mode({"DACA_RUNTIME": "dapr"}, None)
    with pytest.raises(sv.SetupError, match="'local' or 'dapr'"):
        sv.choose_mode({"DACA_RUNTIME": "kubernetes"}, "/usr/local/bin/daprd")


def test_sidecar_env_turns_an_upstash_url_into_the_statestore_fields() -> None:
    env = sv.sidecar_env(SPACE_ENV)
    assert env["REDIS_HOST"] == "eu1-fine-cat-12345.upstash.io:6379"
    assert (env["REDIS_USERNAME"], env["REDIS_PASSWORD"], env["REDIS_ENABLE_TLS"]) == (
        "default",
        "s3cr3t-token",
        "true",
    )
    assert env["AMQP_URL"] == CLOUDAMQP
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "https://otlp.example:4318"


def test_sidecar_env_for_a_local_redis() -> None:
    env = sv.sidecar_env({"REDIS_URL": "redis://localhost", "AMQP_URL": "amqp://guest:guest@localhost:5672/"})
    assert (env["REDIS_HOST"], env["REDIS_PASSWORD"], env["REDIS_ENABLE_TLS"]) == (
        "localhost:6379",
        "",
        "false",
    )


def test_daprd_never_sees_the_apps_own_secrets() -> None:
    env = sv.sidecar_env(SPACE_ENV)
    assert not {"GEMINI_API_KEY", "DATABASE_URL", "DACA_ADMIN_TOKEN", "REDIS_URL"} & set(env)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AMQP_URL": CLOUDAMQP}, "needs REDIS_URL"),
        ({"REDIS_URL": UPSTASH}, "needs AMQP_URL"),
        (
            {"REDIS_URL": "https://eu1-fine-cat-12345.upstash.io", "AMQP_URL": CLOUDAMQP},
            "redis:// or rediss://",
        ),
        ({"REDIS_URL": "rediss://default:s3cr3t-token@host:port", "AMQP_URL": CLOUDAMQP}, "port"),
        ({"REDIS_URL": UPSTASH, "AMQP_URL": "https://user:amqp-pass@goose.rmq.cloudamqp.com"}, "amqp://"),
    ],
)
def test_sidecar_env_refuses_unusable_settings_without_echoing_secrets(
    env: dict[str, str], expected: str
) -> None:
    with pytest.raises(sv.SetupError) as caught:
        sv.sidecar_env(env)
    message = str(caught.value)
    assert expected in message
    assert "s3cr3t-token" not in message and "amqp-pass" not in message


def test_dapr_processes_use_the_kits_names_and_distinct_loopback_ports(tmp_path: Path) -> None:
    placement, scheduler, daprd = sv.dapr_children(
        SPACE_ENV, resources=Path("components"), config=Path("components/config.yaml"), data_dir=tmp_path
    )
    argv = daprd.argv
    flags = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert argv[0] == "daprd"
    assert flags["--app-id"] == "daca-kit"
    assert flags["--app-port"] == "7860"
    assert flags["--resources-path"] == "components"
    assert flags["--config"] == "components/config.yaml"
    assert flags["--placement-host-address"] == f"127.0.0.1:{sv.PLACEMENT_PORT}"
    assert flags["--scheduler-host-address"] == f"127.0.0.1:{sv.SCHEDULER_PORT}"
    ports = [sv.DAPR_HTTP_PORT, sv.DAPR_GRPC_PORT, sv.PLACEMENT_PORT, sv.SCHEDULER_PORT, sv.PLACEMENT_HEALTHZ_PORT,
             sv.SCHEDULER_HEALTHZ_PORT, sv.PLACEMENT_RAFT_PORT, sv.SCHEDULER_ETCD_CLIENT_PORT,
             sv.SCHEDULER_ETCD_PEER_PORT, sv.DEFAULT_APP_PORT]  # fmt: skip
    assert len(set(ports)) == len(ports)
    assert str(tmp_path / "scheduler") in scheduler.argv
    for child in (placement, scheduler):
        assert "AMQP_URL" not in child.env and "REDIS_PASSWORD" not in child.env


def test_the_app_gets_its_settings_and_the_dapr_runtime(tmp_path: Path) -> None:
    app = sv.app_child(SPACE_ENV, python="/opt/venv/bin/python", app=tmp_path / "app.py")
    assert app.argv == ["/opt/venv/bin/python", str(tmp_path / "app.py")]
    assert app.env["DACA_RUNTIME"] == "dapr"
    assert app.env["GEMINI_API_KEY"] == "AIza-not-real"
    assert (app.env["DAPR_HTTP_PORT"], app.env["PORT"]) == ("3500", "7860")


def test_plain_mode_replaces_itself_with_the_app() -> None:
    calls: list[tuple[str, list[str]]] = []
    code = sv.main(
        [], env={"PATH": "", "DACA_RUNTIME": "local"}, execv=lambda path, argv: calls.append((path, argv))
    )
    assert code == 0
    assert calls == [(sys.executable, [sys.executable, str(ROOT / "app.py")])]


def test_dapr_mode_with_missing_settings_fails_with_a_sentence(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_daprd = tmp_path / "daprd"
    fake_daprd.write_text("#!/bin/sh\nexit 1\n")
    fake_daprd.chmod(0o755)
    with caplog.at_level(logging.ERROR, logger="daca_kit.supervise"):
        code = sv.main([], env={"PATH": str(tmp_path), "HOME": str(tmp_path), "DACA_RUNTIME": "dapr"})
    assert code == 2
    assert "Dapr mode needs REDIS_URL and AMQP_URL" in caplog.text


def python_child(name: str, code: str) -> Any:
    return sv.Child(name, [sys.executable, "-c", code])


SLEEPER = "import time; time.sleep(60)"


@pytest.fixture
def sidecar_health() -> Iterator[tuple[str, dict[str, int]]]:
    """A stand-in for daprd's HTTP port: READY_PATH answers with the status in `state["status"]`."""
    state = {"status": 204}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(state["status"] if self.path == sv.READY_PATH else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{sv.READY_PATH}", state
    finally:
        server.shutdown()
        server.server_close()


def test_when_the_app_exits_the_sidecars_are_stopped_and_the_exit_is_non_zero(
    sidecar_health: tuple[str, dict[str, int]],
) -> None:
    url, _ = sidecar_health
    sup = sv.Supervisor(grace=5, poll=0.05)
    sidecars = [python_child(n, SLEEPER) for n in ("placement", "scheduler", "daprd")]
    code = sup.run(sidecars, python_child("app", "raise SystemExit(0)"), url, ready_timeout=10)
    assert code == 1  # the app stopping, even cleanly, means the Space should restart
    assert sup.exited == ("app", 0)
    assert [proc.returncode for _, proc in sup.running[:3]] == [-15, -15, -15]


def test_when_a_sidecar_dies_before_ready_the_app_never_starts(
    sidecar_health: tuple[str, dict[str, int]],
) -> None:
    url, state = sidecar_health
    state["status"] = 500
    sup = sv.Supervisor(grace=5, poll=0.05)
    sidecars = [python_child("placement", SLEEPER), python_child("daprd", "raise SystemExit(3)")]
    code = sup.run(sidecars, python_child("app", SLEEPER), url, ready_timeout=10)
    assert code == 3
    assert [child.name for child, _ in sup.running] == ["placement", "daprd"]
    assert all(proc.returncode is not None for _, proc in sup.running)


def test_a_sidecar_that_never_gets_ready_times_out(
    sidecar_health: tuple[str, dict[str, int]], caplog: pytest.LogCaptureFixture
) -> None:
    url, state = sidecar_health
    state["status"] = 500
    sup = sv.Supervisor(grace=5, poll=0.05)
    with caplog.at_level(logging.ERROR, logger="daca_kit.supervise"):
        code = sup.run([python_child("daprd", SLEEPER)], python_child("app", SLEEPER), url, ready_timeout=0.5)
    assert code == 1
    assert "did not report ready" in caplog.text
    assert sup.running[0][1].returncode == -15


def test_a_stop_request_stops_everything_app_first(
    sidecar_health: tuple[str, dict[str, int]], caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = sidecar_health
    sup = sv.Supervisor(grace=5, poll=0.05)
    timer = threading.Timer(0.5, sup.request_stop)
    timer.start()
    with caplog.at_level(logging.INFO, logger="daca_kit.supervise"):
        code = sup.run([python_child("daprd", SLEEPER)], python_child("app", SLEEPER), url, ready_timeout=10)
    timer.join()
    assert code == 0
    stops = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopping")]
    assert stops == ["stopping app", "stopping daprd"]


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    stubborn = (
        "import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    )
    sup = sv.Supervisor(grace=0.5, poll=0.05)
    sup.start(python_child("daprd", stubborn))
    deadline = time.monotonic() + 10
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    sup.stop_all()
    assert sup.running[0][1].returncode == -9

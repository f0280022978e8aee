"""The notebooks, run top to bottom under papermill, as a new user would run them.

00 and 03 run on embedded defaults and on the real local Postgres, Redis and RabbitMQ; 01 runs with the
local services standing in for the provisioned ones (and the Gemini stub for Gemini); 02 runs as a dry run.
03 also runs against a separately started app (`BASE_URL`) whose `.env` the notebook reads, as a user
verifies a deployment. Executed copies go to build/notebooks/ (ignored by git). A failing cell fails the
test with that cell's source and error. The notebooks name the kernel `daca-kit` (scripts/setup.sh
registers it); papermill runs them on `python3` resolved to this interpreter (the venv's ipykernel),
never a kernelspec found elsewhere.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from daca_kit.ops import space
from daca_kit.ops.envfile import read_env
from daca_kit.ops.launcher import LocalApp
from daca_kit.settings import setting_names
from tests.conftest import purge_queues
from tests.support.gemini_stub import GeminiStub

pytestmark = pytest.mark.notebook

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build" / "notebooks"
KERNEL = "python3"
NOTEBOOK_KERNEL = "daca-kit"  # what the committed notebooks name, for Jupyter front ends
EXPECTED = (
    "00_quickstart_local.ipynb",
    "01_provision_services.ipynb",
    "02_deploy_hf_space.ipynb",
    "03_verify_prototype.ipynb",
)
# Settings a developer's shell may hold; the kernel must not inherit them.
KIT_SETTINGS = (*setting_names(), "HF_TOKEN", "CRONJOB_API_KEY")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(autouse=True)
def kernel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel process inherits this environment: no kit settings from the developer's shell, and the
    venv's kernelspecs first on the Jupyter path."""
    for name in KIT_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    venv_jupyter = str(Path(sys.prefix) / "share" / "jupyter")
    monkeypatch.setenv(
        "JUPYTER_PATH", os.pathsep.join(filter(None, [venv_jupyter, os.environ.get("JUPYTER_PATH")]))
    )
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiets debugpy's frozen-modules note


def _kernel_python() -> None:
    """Fails unless kernel `python3` starts this very interpreter."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(KERNEL)
    program = spec.argv[0]
    # jupyter_client replaces a bare "python"/"python3"/"python3.X" with sys.executable.
    same = program in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}")
    same = same or Path(program).resolve() == Path(sys.executable).resolve()
    assert same, f"kernel '{KERNEL}' runs {program}, not {sys.executable}: install ipykernel in this venv"


def run_notebook(
    name: str, tag: str, cwd: Path, *, expect_failure: bool = False, **parameters: Any
) -> nbformat.NotebookNode:
    """Executes notebooks/<name> with `parameters` into build/notebooks/<stem>.<tag>.ipynb and returns it.

    With `expect_failure`, a failing cell is the expected outcome: the executed copy is returned (its
    error output in the failing cell), and a notebook that runs through fails the test instead.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    _kernel_python()
    BUILD.mkdir(parents=True, exist_ok=True)
    output = BUILD / f"{Path(name).stem}.{tag}.ipynb"
    failure = ""
    try:
        pm.execute_notebook(
            str(NOTEBOOKS / name),
            str(output),
            parameters=parameters,
            kernel_name=KERNEL,
            cwd=str(cwd),
            progress_bar=False,
            log_output=False,
            start_timeout=60,
            execution_timeout=180,
        )
    except PapermillExecutionError as exc:
        if expect_failure:
            return nbformat.read(output, as_version=4)
        trace = ANSI.sub("", "\n".join(exc.traceback))
        failure = (
            f"{name} [{tag}] failed in cell {exc.cell_index} (executed copy: {output}):\n"
            f"{exc.source}\n\n{exc.ename}: {exc.evalue}\n{trace}"
        )
    if failure:  # outside the except block, so the report shows the cell's error once
        pytest.fail(failure, pytrace=False)
    if expect_failure:
        pytest.fail(f"{name} [{tag}] ran through, but a cell was expected to fail (executed copy: {output})")
    return nbformat.read(output, as_version=4)


def output_text(nb: nbformat.NotebookNode) -> str:
    """Everything the executed notebook showed: streams, results, errors."""
    parts: list[str] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "data" in out:
                parts.append(str(out["data"].get("text/plain", "")))
            elif out.get("output_type") == "error":
                parts.append(f"{out.get('ename')}: {out.get('evalue')}")
    return "\n".join(parts)


def assert_no_secrets(nb: nbformat.NotebookNode, *secrets: str) -> None:
    text = output_text(nb)
    for secret in secrets:
        assert secret not in text, "a secret value appears in the notebook's output"


# -- the committed files ---------------------------------------------------------------------------------------
def test_committed_notebooks_have_no_outputs() -> None:
    found = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert found == sorted(EXPECTED)
    for name in found:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                assert cell.outputs == [], f"{name} cell {index} has outputs: clear them before committing"
                assert cell.execution_count is None, f"{name} cell {index} has an execution count"
        tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{name} needs exactly one cell tagged 'parameters'"
        assert nb.metadata["kernelspec"]["name"] == NOTEBOOK_KERNEL
        assert nb.cells[0].cell_type == "markdown"


# -- 00 --------------------------------------------------------------------------------------------------------
def test_quickstart_on_embedded_defaults(tmp_path: Path) -> None:
    nb = run_notebook("00_quickstart_local.ipynb", "embedded", tmp_path)
    assert "message_count:bob = 4" in output_text(nb)


@pytest.mark.integration
def test_quickstart_on_real_services(tmp_path: Path, pg_url: str, redis_url: str, amqp_url: str) -> None:
    purge_queues(amqp_url)  # events left by earlier tests would count for bob too
    nb = run_notebook(
        "00_quickstart_local.ipynb",
        "services",
        tmp_path,
        DATABASE_URL=pg_url,
        REDIS_URL=redis_url,
        AMQP_URL=amqp_url,
    )
    text = output_text(nb)
    assert "message_count:bob = 4" in text
    assert "'database': 'postgres'" in text and "'events': 'amqp://" in text


# -- 01 --------------------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_provisioning_with_local_services(tmp_path: Path, pg_url: str, redis_url: str, amqp_url: str) -> None:
    key = "gemini-key-for-notebook-01"
    env_file = tmp_path / "settings.env"
    with GeminiStub(api_key=key, models={"gemini-test-model"}) as stub:
        nb = run_notebook(
            "01_provision_services.ipynb",
            "services",
            tmp_path,
            DATABASE_URL=pg_url,
            REDIS_URL=redis_url,
            AMQP_URL=amqp_url,
            GEMINI_API_KEY=key,
            GEMINI_MODEL="gemini-test-model",
            GEMINI_BASE_URL=stub.base_url,
            ENV_FILE=str(env_file),
        )
    written = read_env(env_file)
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "AMQP_URL",
        "GEMINI_API_KEY",
        "DACA_ADMIN_TOKEN",
        "DACA_REVIEWER_PASSWORD",
    ):
        assert written.get(name), f"{name} is missing from the written .env"
    assert written["GEMINI_API_KEY"] == key and written["DATABASE_URL"] == pg_url
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    text = output_text(nb)
    summary = text[text.rindex("Backends:") :]
    for backend in ("database", "counters", "events", "model"):
        assert re.search(rf"^\s+{backend}\s+ok\s", summary, re.M), f"{backend} is not ok:\n{summary}"
    assert "FAILED" not in summary and "not configured" in summary  # Hugging Face and cron-job.org
    assert "open" in text and "127.0.0.1" in text  # the outbound ports of the configured hosts
    assert_no_secrets(nb, key, "guest:guest", written["DACA_ADMIN_TOKEN"], written["DACA_REVIEWER_PASSWORD"])


# -- 02 --------------------------------------------------------------------------------------------------------
def test_deploy_dry_run_builds_a_complete_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "DATABASE_URL": "cockroachdb://daca:db-password-5f1a@free-tier.cockroachlabs.cloud:26257/defaultdb",
        "GEMINI_API_KEY": "gemini-key-for-notebook-02",
        "DACA_ADMIN_TOKEN": "admin-token-for-notebook-02",
        "DACA_REVIEWER_PASSWORD": "reviewer-password-for-02",
        "CRONJOB_API_KEY": "cron-key-for-notebook-02",
    }
    env_file = tmp_path / "settings.env"
    env_file.write_text(
        "".join(f"{k}={v}\n" for k, v in secrets.items()) + "GEMINI_MODEL=gemini-test-model\n"
    )
    # A dry run makes no network call: any that slipped through would fail here, not reach the internet.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    out = tmp_path / "space"
    nb = run_notebook(
        "02_deploy_hf_space.ipynb",
        "dry-run",
        tmp_path,
        SPACE_ID="someone/daca-prototype",
        ENV_FILE=str(env_file),
        OUTPUT_DIR=str(out),
    )
    text = output_text(nb)
    assert "DRY RUN" in text and "nothing was sent" in text
    assert space.check_space(out) == []
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("---\n")
    import yaml

    front = yaml.safe_load(readme.split("---\n")[1])
    # the default target is the one a free account may host: Gradio on ZeroGPU, Python 3.12
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py" and front["python_version"] == "3.12.12"
    assert front["sdk_version"] == space.gradio_version() and front["hf_oauth"] is True
    assert "zerogpu  [free]" in text and "cpu      [PRO]" in text and "space_hardware='zero-a10g'" in text
    for name in (
        "app.py",
        "requirements.txt",
        "daca_kit/web/server.py",
        "daca_kit/web/api/__init__.py",
        "components",
    ):
        assert (out / name).exists(), f"{name} is missing from the Space folder"
    assert not (out / ".env").exists()
    requirements = (out / "requirements.txt").read_text().splitlines()
    assert f"gradio=={front['sdk_version']}" in requirements
    assert any(line.startswith("spaces==") for line in requirements)
    # the plan names every secret and the variable, and the cron job's target and header
    for name in ("DATABASE_URL", "GEMINI_API_KEY", "DACA_ADMIN_TOKEN", "DACA_REVIEWER_PASSWORD"):
        assert f"add_space_secret(repo_id='someone/daca-prototype', key='{name}'" in text
    assert (
        "add_space_variable(repo_id='someone/daca-prototype', key='GEMINI_MODEL', value='gemini-test-model')"
        in text
    )
    assert "POST https://someone-daca-prototype.hf.space/analytics/reset" in text
    assert '"Authorization": "Bearer ***"' in text
    assert_no_secrets(nb, *secrets.values(), "db-password-5f1a")
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".md", ".txt", ".yaml", ".toml"):
            content = path.read_text(encoding="utf-8", errors="replace")
            assert not any(value in content for value in secrets.values()), f"a secret was written to {path}"


# -- 03 --------------------------------------------------------------------------------------------------------
RUN = re.compile(r"users of this run: alice-(\w+), bob-(\w+)")


def run_id(text: str) -> str:
    found = RUN.search(text)
    assert found, "03 did not name this run's users"
    return found.group(2)


def test_verify_on_embedded_defaults(tmp_path: Path) -> None:
    nb = run_notebook(
        "03_verify_prototype.ipynb",
        "embedded",
        tmp_path,
        ENV_FILE=str(tmp_path / "none.env"),
        RESET_COUNTS=True,
    )
    text = output_text(nb)
    run = run_id(text)
    assert f"message_count:bob-{run} = 4" in text and "without token: 401" in text
    assert "with token: success" in text and "then 429" in text
    assert "uses the services its settings name: none named (embedded)" in text
    assert "stored count read directly: 4" in text  # the embedded counters, read in the SQL database
    assert any("image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))


@pytest.mark.integration
def test_verify_on_real_services(tmp_path: Path, pg_url: str, redis_url: str, amqp_url: str) -> None:
    purge_queues(amqp_url)
    nb = run_notebook(
        "03_verify_prototype.ipynb",
        "services",
        tmp_path,
        ENV_FILE=str(tmp_path / "none.env"),
        DATABASE_URL=pg_url,
        REDIS_URL=redis_url,
        AMQP_URL=amqp_url,
    )
    text = output_text(nb)
    run = run_id(text)
    assert f"message_count:bob-{run} = 4" in text and "conversation table:" in text
    assert "uses the services its settings name: counters, database, events" in text
    assert "skipped: the accepted reset" in text and "then 429" in text and "turns/day" in text


def _deployment_env(tmp_path: Path, app: LocalApp, **services: str) -> Path:
    """The .env a user keeps for a deployment: its services and its credentials (notebook 01 writes one)."""
    env_file = tmp_path / "deployment.env"
    values = {
        **services,
        "DACA_ADMIN_TOKEN": app.admin_token,
        "DACA_REVIEWER_PASSWORD": app.reviewer_password,
    }
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return env_file


@pytest.mark.integration
def test_verify_a_separately_started_app_with_base_url(
    tmp_path: Path, pg_url: str, redis_url: str, amqp_url: str
) -> None:
    """03 against a deployment it did not start: credentials, services and 5.4's reads come from the .env."""
    purge_queues(amqp_url)
    services = {"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "AMQP_URL": amqp_url}
    with LocalApp(services, workdir=tmp_path / "app") as app:
        other = "someone-real"  # a user of the deployment, whom a verification run must leave alone
        with app.client() as http:
            assert (
                http.post(
                    f"/analytics/{other}/initialize", json={"message_count": 7}, headers=app.admin_headers
                ).status_code
                == 200
            )
        env_file = _deployment_env(tmp_path, app, **services)
        nb = run_notebook(
            "03_verify_prototype.ipynb", "base-url", tmp_path, BASE_URL=app.base_url, ENV_FILE=str(env_file)
        )
        text = output_text(nb)
        run = run_id(text)
        assert f"message_count:bob-{run} = 4" in text and "conversation table:" in text
        assert "stored count read directly: 4" in text  # from Redis itself, named by the .env
        assert "uses the services its settings name: counters, database, events" in text
        assert "skipped: the rate limit probe" in text and "skipped: the accepted reset" in text
        with app.client() as http:
            assert http.get(f"/analytics/{other}").json()["message_count"] == 7
        assert_no_secrets(nb, app.admin_token, app.reviewer_password)


@pytest.mark.integration
def test_verify_fails_a_deployment_that_does_not_use_its_services(
    tmp_path: Path, pg_url: str, redis_url: str, amqp_url: str
) -> None:
    """A deployment that lost its secrets runs on SQLite, embedded counters and events: 03 must say so."""
    with LocalApp(workdir=tmp_path / "app") as app:  # started without the services its .env names
        env_file = _deployment_env(tmp_path, app, DATABASE_URL=pg_url, REDIS_URL=redis_url, AMQP_URL=amqp_url)
        nb = run_notebook(
            "03_verify_prototype.ipynb",
            "missing-secrets",
            tmp_path,
            expect_failure=True,
            BASE_URL=app.base_url,
            ENV_FILE=str(env_file),
        )
    text = output_text(nb)
    assert "AssertionError" in text
    assert "DATABASE_URL names postgres for the database, but /health says the app uses sqlite" in text
    assert "REDIS_URL names redis for the counters" in text and "AMQP_URL names rabbitmq" in text
    assert "set DATABASE_URL in the Space's secrets" in text
    assert "WARNING: Replies come from the offline model" in text  # /health's warnings are shown
    assert ": 5  bob-" not in text and "message_count:" not in text  # it stopped before touching data

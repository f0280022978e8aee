"""Putting a built folder on the Hub: the Space's secrets and variables, the calls, and the wait.

    secrets = space_settings(settings, folder.path)      # secrets vs. plain variables, masked in describe()
    plan = deploy_plan(folder, "you/daca-prototype", secrets)
    print(plan.describe())                               # the exact huggingface_hub calls, secrets masked
    url = run_plan(plan, token)                          # makes them; returns https://you-daca-prototype.hf.space
    wait_running("you/daca-prototype", token)            # follows the build until the Space runs

The Space is created with its target's SDK and hardware (ZeroGPU for the zerogpu target); an existing
Space keeps the hardware it has. Secrets and variables are set before the upload, so the first build
already has them.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from daca_kit.ops.envfile import URL_NAMES, is_secret, mask, settings_env
from daca_kit.ops.space.build import SpaceFolder, read_front_matter, space_url
from daca_kit.ops.space.targets import target_of
from daca_kit.settings import Settings

# Set by Spaces itself, or meaningless there.
NOT_FOR_SPACES = frozenset({"PORT", "HOST", "SPACE_ID", "SPACES_ZERO_GPU", "OAUTH_CLIENT_ID"})
IGNORE_UPLOAD = ["**/__pycache__/**", "*.pyc", ".env", ".env.*"]
RUNNING_STAGES = ("RUNNING",)
FAILED_STAGES = ("BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE", "PAUSED", "STOPPED")


@dataclass
class SpaceSettings:
    """What the Space needs as secrets (values hidden in the Space's settings) and plain variables."""

    secrets: dict[str, str]
    variables: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"secret   {name} = {mask(name, value)}" for name, value in self.secrets.items()]
        lines += [f"variable {name} = {value}" for name, value in self.variables.items()]
        return "\n".join(lines + [f"note: {note}" for note in self.notes])


def _ship_root_cert(database_url: str, folder: Path | None, notes: list[str]) -> str:
    """A CockroachDB URL's `sslrootcert` file, copied into the Space folder, with the URL pointed at the copy."""
    parts = urlsplit(database_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    cert = dict(query).get("sslrootcert")
    if not cert or cert == "system":
        return database_url
    local = Path(cert).expanduser()
    if folder is None or not local.is_file():
        notes.append(
            f"DATABASE_URL names sslrootcert '{cert}', which must exist on the Space too: put the CA file in the "
            "Space folder and point sslrootcert at it (a path relative to the app's folder)."
        )
        return database_url
    (folder / "certs").mkdir(exist_ok=True)
    shutil.copy2(local, folder / "certs" / local.name)
    new_query = urlencode([(k, f"certs/{local.name}" if k == "sslrootcert" else v) for k, v in query])
    notes.append(f"Copied the database's CA certificate into the Space as certs/{local.name}.")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, new_query, parts.fragment))


def space_settings(settings: Settings | Mapping[str, str], folder: str | Path | None = None) -> SpaceSettings:
    """Splits the kit's settings into Space secrets and variables (only those that differ from the defaults)."""
    values = (
        settings_env(settings) if isinstance(settings, Settings) else {k: v for k, v in settings.items() if v}
    )
    secrets: dict[str, str] = {}
    variables: dict[str, str] = {}
    notes: list[str] = []
    for name, value in values.items():
        if name in NOT_FOR_SPACES:
            continue
        if name == "DATABASE_URL":
            value = _ship_root_cert(value, Path(folder) if folder else None, notes)
        if is_secret(name) or name in URL_NAMES:
            secrets[name] = value
        else:
            variables[name] = value
    if "DATABASE_URL" not in secrets:
        notes.append(
            "DATABASE_URL is not set: the Space would keep conversations in SQLite, which Spaces do not keep "
            "across restarts; set it to CockroachDB or Postgres."
        )
    if "DACA_ADMIN_TOKEN" not in secrets:
        notes.append(
            "DACA_ADMIN_TOKEN is not set: the nightly reset and analytics initialisation will be refused."
        )
    if "DACA_REVIEWER_PASSWORD" not in secrets:
        notes.append(
            "DACA_REVIEWER_PASSWORD is not set: the Space makes up a password at each start (see its log)."
        )
    return SpaceSettings(secrets=secrets, variables=variables, notes=notes)


@dataclass
class DeployPlan:
    """The exact huggingface_hub calls `run_plan` makes, in order; `describe()` masks the secrets."""

    repo_id: str
    folder: SpaceFolder
    secrets: SpaceSettings
    private: bool = False
    steps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return space_url(self.repo_id)

    @property
    def sdk(self) -> str:
        return self.folder.sdk

    def describe(self) -> str:
        lines = []
        for number, (call, kwargs) in enumerate(self.steps, 1):
            shown = {
                k: (mask(kwargs["key"], v) if k == "value" and call == "add_space_secret" else v)
                for k, v in kwargs.items()
            }
            args = ", ".join(f"{k}={v!r}" for k, v in shown.items())
            lines.append(f"{number:>2}. HfApi.{call}({args})")
        return "\n".join(lines)


def deploy_plan(
    folder: SpaceFolder, repo_id: str, secrets: SpaceSettings, *, private: bool = False
) -> DeployPlan:
    """Create the Space (or keep it), set its secrets and variables before the upload starts its build, upload."""
    space_url(repo_id)  # validates the id
    create = {
        "repo_id": repo_id,
        "repo_type": "space",
        "space_sdk": folder.target.sdk,
        "space_hardware": folder.target.hardware,
        "private": private,
        "exist_ok": True,
    }
    steps: list[tuple[str, dict[str, Any]]] = [("create_repo", create)]
    for key, value in secrets.secrets.items():
        steps.append(("add_space_secret", {"repo_id": repo_id, "key": key, "value": value}))
    for key, value in secrets.variables.items():
        steps.append(("add_space_variable", {"repo_id": repo_id, "key": key, "value": value}))
    upload = {
        "repo_id": repo_id,
        "repo_type": "space",
        "folder_path": str(folder.path),
        "commit_message": f"Deploy daca_kit ({folder.target.name})",
        "ignore_patterns": IGNORE_UPLOAD,
    }
    steps.append(("upload_folder", upload))
    return DeployPlan(repo_id=repo_id, folder=folder, secrets=secrets, private=private, steps=steps)


def run_plan(plan: DeployPlan, token: str, *, api: Any = None, progress: bool = False) -> str:
    """Makes the plan's calls with `token` and returns the Space's URL."""
    if not token:
        raise ValueError(
            "HF_TOKEN is empty: create a token with write access at https://huggingface.co/settings/tokens"
        )
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    steps: Any = plan.steps
    if progress:
        from tqdm import tqdm

        steps = tqdm(plan.steps, desc="deploying the Space", unit="call")
    for call, kwargs in steps:
        getattr(api, call)(**kwargs)
    return plan.url


def upload_space(
    folder: str | Path,
    repo_id: str,
    token: str,
    secrets: Mapping[str, str] | None = None,
    *,
    variables: Mapping[str, str] | None = None,
    private: bool = False,
    api: Any = None,
) -> str:
    """Creates or updates the Space `repo_id` from a built folder; returns its URL. Network: Hugging Face only."""
    path = Path(folder)
    data = read_front_matter(path / "README.md")
    requirements = path / "requirements.txt"
    target = target_of(data, requirements.read_text(encoding="utf-8") if requirements.exists() else "")
    if target is None:
        raise ValueError(f"{path} is not a built Space folder: its README.md names no sdk")
    built = SpaceFolder(path=path, target=target, front_matter=data)
    plan = deploy_plan(
        built, repo_id, SpaceSettings(dict(secrets or {}), dict(variables or {})), private=private
    )
    return run_plan(plan, token, api=api)


def wait_running(
    repo_id: str, token: str, *, timeout: float = 1200.0, api: Any = None, interval: float = 10.0
) -> str:
    """Waits (with a progress bar) until the Space's build finished and it runs; returns its last stage."""
    from tqdm import tqdm

    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    start = time.monotonic()
    stage = "?"
    with tqdm(total=round(timeout), desc="waiting for the Space", bar_format="{desc}: {n:.0f} s") as bar:
        while time.monotonic() - start < timeout:
            stage = str(api.get_space_runtime(repo_id).stage)
            bar.set_description(f"Space stage {stage}")
            bar.update(time.monotonic() - start - bar.n)
            if stage in RUNNING_STAGES:
                return stage
            if stage in FAILED_STAGES:
                raise RuntimeError(
                    f"The Space stopped at stage {stage}: read its build and container logs on the Space page."
                )
            time.sleep(interval)
    raise TimeoutError(
        f"The Space was still at stage {stage} after {timeout:g} s: check its logs on the Space page."
    )

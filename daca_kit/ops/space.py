"""The Hugging Face Space for the kit: the folder to upload, its secrets, and the upload.

    folder = build_space("build/space")                         # a Gradio SDK Space (the free path)
    folder = build_space("build/space-docker", sdk="docker")     # the Docker alternative (app_port 7860)
    assert not check_space(folder.path)                          # [] when the folder is complete
    plan = deploy_plan(folder, "you/daca-prototype", space_settings(settings, folder.path))
    print(plan.describe())                                       # the exact calls, secrets masked
    url = upload_space(folder.path, "you/daca-prototype", token, plan.secrets.secrets, variables=...)

A Gradio SDK Space runs `python app.py` with the packages of `requirements.txt` on the `sdk_version` of
Gradio named in the README's front matter; a Docker Space builds the `Dockerfile` and sends traffic to
`app_port`. Both get the kit's settings as Space secrets and variables (environment variables at run
time); nothing secret is written into the folder.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml

from daca_kit.ops.doctor import AUTH, ERROR, FAILED, MISSING, NOT_CONFIGURED, OK, CheckResult
from daca_kit.ops.envfile import URL_NAMES, is_secret, mask, settings_env
from daca_kit.settings import Settings

SDKS = ("gradio", "docker")
PYTHON_VERSION = "3.11"
APP_PORT = 7860
# Set by Spaces itself, or meaningless there.
NOT_FOR_SPACES = frozenset({"PORT", "HOST", "SPACE_ID", "OAUTH_CLIENT_ID"})  # set by the platform
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".env", ".env.*", ".ipynb_checkpoints")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


@dataclass
class SpaceFolder:
    """A built Space folder: where it is, which SDK, its front matter, the files in it (relative)."""

    path: Path
    sdk: str
    front_matter: dict[str, Any]
    files: list[str] = field(default_factory=list)


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


# -- where things are ----------------------------------------------------------------------------------------
def project_root() -> Path:
    """The kit's source tree: the folder holding app.py next to the daca_kit package."""
    candidate = Path(__file__).resolve().parents[2]
    if (candidate / "app.py").exists():
        return candidate
    return Path.cwd()


def space_url(repo_id: str) -> str:
    """The public URL of a Space: https://<owner>-<name>.hf.space."""
    owner, _, name = repo_id.partition("/")
    if not owner or not name:
        raise ValueError(f"'{repo_id}' is not a Space id: write it as owner/name")
    slug = re.sub(r"[^a-z0-9-]", "-", f"{owner}-{name}".lower())
    return f"https://{slug}.hf.space"


def gradio_version(project: Path | None = None) -> str:
    """The Gradio the kit is tested with: the installed one, else the pin in requirements.lock."""
    try:
        return metadata.version("gradio")
    except metadata.PackageNotFoundError:
        pins = dict(_pins((project or project_root()) / "requirements.lock"))
        if "gradio" not in pins:
            raise RuntimeError("Gradio is neither installed nor pinned in requirements.lock") from None
        return pins["gradio"]


# -- the folder ----------------------------------------------------------------------------------------------
def front_matter(
    sdk: str = "gradio", *, title: str = "DACA prototype", sdk_version: str | None = None
) -> dict[str, Any]:
    """The README's YAML front matter that configures the Space."""
    if sdk not in SDKS:
        raise ValueError(f"sdk must be one of {', '.join(SDKS)}, not '{sdk}'")
    data: dict[str, Any] = {
        "title": title,
        "emoji": "💬",
        "colorFrom": "blue",
        "colorTo": "indigo",
        "sdk": sdk,
    }
    if sdk == "gradio":
        data["sdk_version"] = sdk_version or gradio_version()
        data["python_version"] = PYTHON_VERSION
        data["app_file"] = "app.py"
    else:
        data["app_port"] = APP_PORT
    data["pinned"] = False
    data["license"] = "mit"
    data["short_description"] = "Chat with human review on a free-tier stack (daca_kit)"
    return data


def render_readme(data: dict[str, Any], body: str) -> str:
    return "---\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True) + "---\n\n" + body


def read_front_matter(readme: str | Path) -> dict[str, Any]:
    """The YAML front matter of a README (a file path or its text); {} when there is none."""
    text = Path(readme).read_text(encoding="utf-8") if isinstance(readme, Path) else readme
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}
    data = yaml.safe_load(match.group(1))
    return data if isinstance(data, dict) else {}


def _pins(lock: Path) -> list[tuple[str, str]]:
    pins = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = _REQUIREMENT.match(line.strip())
        if match:
            pins.append((match.group(1).lower(), match.group(2)))
    return pins


def requirements_from_lock(lock: Path) -> list[str]:
    """`name==version` for every package of the lock file (hashes dropped: Spaces installs with pip)."""
    return [f"{name}=={version}" for name, version in _pins(lock)]


def _body(sdk: str) -> str:
    kind = "a Gradio SDK Space" if sdk == "gradio" else "a Docker Space"
    return (
        "# DACA prototype\n\n"
        f"This is {kind} built by daca_kit: a chat with human review of sensitive messages, stored turns, "
        "analytics counters and a free-tier meter. The Chat and Review tabs and the REST API share one port.\n\n"
        "Settings come from the Space's secrets and variables (Settings > Variables and secrets); see the "
        "kit's DESIGN.md for their names. `GET /health` shows which backends are in use.\n"
    )


def build_space(
    dest: str | Path,
    *,
    sdk: str = "gradio",
    project: str | Path | None = None,
    title: str = "DACA prototype",
) -> SpaceFolder:
    """Writes a complete Space folder at `dest` (emptied first) and returns what it holds."""
    source = Path(project) if project else project_root()
    folder = Path(dest)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    data = front_matter(sdk, title=title, sdk_version=gradio_version(source) if sdk == "gradio" else None)
    (folder / "README.md").write_text(render_readme(data, _body(sdk)), encoding="utf-8")
    lock = source / "requirements.lock"
    if not lock.exists():
        raise FileNotFoundError(f"{lock} is missing: the Space's requirements are built from it")
    (folder / "requirements.txt").write_text("\n".join(requirements_from_lock(lock)) + "\n", encoding="utf-8")
    shutil.copy2(source / "app.py", folder / "app.py")
    shutil.copytree(source / "daca_kit", folder / "daca_kit", ignore=IGNORE)
    if (source / "components").is_dir():
        shutil.copytree(source / "components", folder / "components", ignore=IGNORE)
    if sdk == "docker":
        for name in ("Dockerfile", ".dockerignore", "requirements.lock", "pyproject.toml"):
            if (source / name).exists():
                shutil.copy2(source / name, folder / name)
        if (source / "docker").is_dir():
            shutil.copytree(source / "docker", folder / "docker", ignore=IGNORE)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return SpaceFolder(path=folder, sdk=sdk, front_matter=data, files=files)


def _dockerfile_sources(dockerfile: Path) -> list[str]:
    """The local paths a Dockerfile's COPY/ADD lines read (not those copied from another stage)."""
    sources: list[str] = []
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]) or len(args) < 2:
            continue
        sources += [a.rstrip("/") for a in args[:-1]]
    return sources


def check_space(path: str | Path) -> list[str]:
    """What is missing or wrong in a Space folder, one sentence each ([] when it is complete)."""
    folder = Path(path)
    problems: list[str] = []
    readme = folder / "README.md"
    if not readme.exists():
        return ["README.md is missing: a Space is configured by its README's front matter."]
    try:
        data = read_front_matter(readme)
    except yaml.YAMLError as exc:
        return [f"README.md's front matter is not valid YAML: {exc}"]
    sdk = data.get("sdk")
    if sdk not in SDKS:
        problems.append(f"README.md's front matter must say sdk: gradio or sdk: docker (it says {sdk!r}).")
    for name in (
        "app.py",
        "requirements.txt",
        "daca_kit/__init__.py",
        "daca_kit/web/server.py",
        "daca_kit/web/api/__init__.py",
    ):
        if not (folder / name).exists():
            problems.append(f"{name} is missing.")
    if sdk == "gradio":
        version = data.get("sdk_version")
        if not version:
            problems.append("A Gradio Space needs sdk_version in the front matter.")
        app_file = data.get("app_file")
        if not app_file or not (folder / str(app_file)).exists():
            problems.append(f"app_file {app_file!r} does not name a file in the folder.")
        if str(data.get("python_version", "")) != PYTHON_VERSION:
            problems.append(f"python_version should be {PYTHON_VERSION}, the version the kit is tested on.")
        requirements = (
            (folder / "requirements.txt").read_text(encoding="utf-8")
            if (folder / "requirements.txt").exists()
            else ""
        )
        if version and f"gradio=={version}" not in requirements.splitlines():
            problems.append(f"requirements.txt should pin gradio=={version}, the Space's sdk_version.")
    if sdk == "docker":
        if data.get("app_port") != APP_PORT:
            problems.append(f"A Docker Space of the kit needs app_port: {APP_PORT} in the front matter.")
        dockerfile = folder / "Dockerfile"
        if not dockerfile.exists():
            problems.append("Dockerfile is missing.")
        else:
            for source in _dockerfile_sources(dockerfile):
                if not (folder / source).exists():
                    problems.append(f"The Dockerfile copies {source}, which is not in the folder.")
    for secret_file in (".env",):
        if (folder / secret_file).exists():
            problems.append(f"{secret_file} is in the folder: secrets belong in the Space's settings.")
    return problems


# -- settings as Space secrets --------------------------------------------------------------------------------
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


# -- upload ---------------------------------------------------------------------------------------------------
@dataclass
class DeployPlan:
    """The exact huggingface_hub calls `upload_space` makes, in order; `describe()` masks the secrets."""

    repo_id: str
    sdk: str
    folder: Path
    secrets: SpaceSettings
    private: bool = False
    steps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return space_url(self.repo_id)

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


IGNORE_UPLOAD = ["**/__pycache__/**", "*.pyc", ".env", ".env.*"]


def deploy_plan(
    folder: SpaceFolder, repo_id: str, secrets: SpaceSettings, *, private: bool = False
) -> DeployPlan:
    """Create the Space (or keep it), set its secrets and variables before the upload starts its build, upload."""
    space_url(repo_id)  # validates the id
    steps: list[tuple[str, dict[str, Any]]] = [
        (
            "create_repo",
            {
                "repo_id": repo_id,
                "repo_type": "space",
                "space_sdk": folder.sdk,
                "private": private,
                "exist_ok": True,
            },
        )
    ]
    for key, value in secrets.secrets.items():
        steps.append(("add_space_secret", {"repo_id": repo_id, "key": key, "value": value}))
    for key, value in secrets.variables.items():
        steps.append(("add_space_variable", {"repo_id": repo_id, "key": key, "value": value}))
    steps.append(
        (
            "upload_folder",
            {
                "repo_id": repo_id,
                "repo_type": "space",
                "folder_path": str(folder.path),
                "commit_message": "Deploy daca_kit",
                "ignore_patterns": IGNORE_UPLOAD,
            },
        )
    )
    return DeployPlan(
        repo_id=repo_id, sdk=folder.sdk, folder=folder.path, secrets=secrets, private=private, steps=steps
    )


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
    sdk: str | None = None,
    private: bool = False,
    api: Any = None,
) -> str:
    """Creates or updates the Space `repo_id` from a built folder; returns its URL. Network: Hugging Face only."""
    path = Path(folder)
    data = read_front_matter(path / "README.md")
    chosen = sdk or str(data.get("sdk", "gradio"))
    built = SpaceFolder(path=path, sdk=chosen, front_matter=data)
    plan = deploy_plan(
        built, repo_id, SpaceSettings(dict(secrets or {}), dict(variables or {})), private=private
    )
    return run_plan(plan, token, api=api)


RUNNING_STAGES = ("RUNNING",)
FAILED_STAGES = ("BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE", "PAUSED", "STOPPED")


def wait_running(
    repo_id: str, token: str, *, timeout: float = 1200.0, api: Any = None, interval: float = 10.0
) -> str:
    """Waits (with a progress bar) until the Space's build finished and it runs; returns its last stage."""
    import time

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


def check_token(token: str | None) -> CheckResult:
    """A doctor-style check of HF_TOKEN: who it belongs to and whether it may write (one call)."""
    if not token:
        return CheckResult(
            "hugging face",
            "HF_TOKEN",
            NOT_CONFIGURED,
            "not configured: notebook 02 then only builds the Space folder.",
        )
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        who = HfApi(token=token).whoami()
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return CheckResult(
                "hugging face",
                "HF_TOKEN",
                FAILED,
                "Hugging Face refused HF_TOKEN: create a new token with write access.",
                problem=AUTH,
            )
        return CheckResult(
            "hugging face", "HF_TOKEN", FAILED, f"Hugging Face answered {status}: try again.", problem=ERROR
        )
    role = ((who.get("auth") or {}).get("accessToken") or {}).get("role", "")
    if role == "read":
        return CheckResult(
            "hugging face",
            "HF_TOKEN",
            FAILED,
            "HF_TOKEN may only read: create a token with write access.",
            problem=MISSING,
        )
    return CheckResult(
        "hugging face", "HF_TOKEN", OK, f"HF_TOKEN belongs to '{who.get('name')}' ({role or 'token'})."
    )

"""Is a Space folder complete, and may HF_TOKEN deploy it?

    problems = check_space("build/space")     # [] when complete; else one sentence per problem
    result = check_token(token)               # a doctor-style CheckResult: whose token, may it write

`check_space` reads the folder as the Hub would: the README's front matter names the SDK (and for a
Gradio Space the Gradio version, Python version and app file), requirements.txt pins that Gradio,
a ZeroGPU folder carries the `spaces` package, a Docker folder holds every file its Dockerfile copies,
and no `.env` is in it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from daca_kit.errors import AUTH, ERROR, MISSING
from daca_kit.ops.checks import FAILED, NOT_CONFIGURED, OK, CheckResult
from daca_kit.ops.space.build import read_front_matter
from daca_kit.ops.space.targets import APP_PORT, target_of

REQUIRED_FILES = (
    "app.py",
    "requirements.txt",
    "daca_kit/__init__.py",
    "daca_kit/web/server.py",
    "daca_kit/web/api/__init__.py",
)


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
    readme = folder / "README.md"
    if not readme.exists():
        return ["README.md is missing: a Space is configured by its README's front matter."]
    try:
        data = read_front_matter(readme)
    except yaml.YAMLError as exc:
        return [f"README.md's front matter is not valid YAML: {exc}"]
    requirements_file = folder / "requirements.txt"
    requirements = requirements_file.read_text(encoding="utf-8") if requirements_file.exists() else ""
    target = target_of(data, requirements)
    problems = [f"{name} is missing." for name in REQUIRED_FILES if not (folder / name).exists()]
    if target is None:
        problems.append(
            f"README.md's front matter must say sdk: gradio or sdk: docker (it says {data.get('sdk')!r})."
        )
    elif target.sdk == "gradio":
        problems += _gradio_problems(folder, data, requirements, target.name, target.python_version or "")
    else:
        problems += _docker_problems(folder, data)
    if (folder / ".env").exists():
        problems.append(".env is in the folder: secrets belong in the Space's settings.")
    return problems


def _gradio_problems(
    folder: Path, data: dict[str, object], requirements: str, target: str, python_version: str
) -> list[str]:
    problems = []
    version = data.get("sdk_version")
    if not version:
        problems.append("A Gradio Space needs sdk_version in the front matter.")
    app_file = data.get("app_file")
    if not app_file or not (folder / str(app_file)).exists():
        problems.append(f"app_file {app_file!r} does not name a file in the folder.")
    if str(data.get("python_version", "")) != python_version:
        problems.append(
            f"python_version should be {python_version}, the Python the {target} target's lock is tested on."
        )
    lines = requirements.splitlines()
    if version and f"gradio=={version}" not in lines:
        problems.append(f"requirements.txt should pin gradio=={version}, the Space's sdk_version.")
    if target == "zerogpu" and not any(line.startswith("spaces==") for line in lines):
        problems.append("requirements.txt should pin the spaces package: ZeroGPU needs @spaces.GPU.")
    return problems


def _docker_problems(folder: Path, data: dict[str, object]) -> list[str]:
    problems = []
    if data.get("app_port") != APP_PORT:
        problems.append(f"A Docker Space of the kit needs app_port: {APP_PORT} in the front matter.")
    dockerfile = folder / "Dockerfile"
    if not dockerfile.exists():
        return problems + ["Dockerfile is missing."]
    for source in _dockerfile_sources(dockerfile):
        if not (folder / source).exists():
            problems.append(f"The Dockerfile copies {source}, which is not in the folder.")
    return problems


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
        status = exc.response.status_code if exc.response is not None else None
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

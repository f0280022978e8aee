"""The folder a Space is made from: README front matter, requirements, the app and the package.

    folder = build_space("build/space", target="zerogpu")   # the free one (see targets.py)
    folder.files                                             # what is in it, relative paths

A Gradio SDK Space runs `python app.py` after installing `requirements.txt`, on the Gradio version
its front matter names (`sdk_version`, the same as the pin in requirements.txt); a Docker Space builds
the `Dockerfile`. Nothing secret is written into the folder: settings travel as Space secrets.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from daca_kit.ops.space.targets import DEFAULT_TARGET, Target, get_target

IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".env", ".env.*", ".ipynb_checkpoints")
# What a Docker Space needs beside the app: the image's recipe and what it copies.
DOCKER_FILES = ("Dockerfile", ".dockerignore", "requirements.lock", "pyproject.toml")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


@dataclass
class SpaceFolder:
    """A built Space folder: where it is, which target, its front matter, the files in it (relative)."""

    path: Path
    target: Target
    front_matter: dict[str, Any]
    files: list[str] = field(default_factory=list)

    @property
    def sdk(self) -> str:
        return self.target.sdk

    def describe(self) -> str:
        """What was built, where, on which Python, and what the Space will cost."""
        python = self.front_matter.get("python_version") or f"{self.target.python} (the Dockerfile's image)"
        return "\n".join(
            [
                f"{self.path}: {len(self.files)} files for a {self.target.summary}",
                f"sdk: {self.sdk}, Python {python}, hardware {self.target.hardware}",
                f"cost: {self.target.cost}",
            ]
        )


def project_root() -> Path:
    """The kit's source tree: the folder holding app.py next to the daca_kit package."""
    candidate = Path(__file__).resolve().parents[3]
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


def lock_pins(lock: Path) -> dict[str, str]:
    """{package: version} for every `name==version` line of a lock file (names lower-cased)."""
    pins: dict[str, str] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = _REQUIREMENT.match(line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def requirements_from_lock(lock: Path) -> list[str]:
    """`name==version` for every package of the lock file (hashes dropped: Spaces installs with pip)."""
    return [f"{name}=={version}" for name, version in lock_pins(lock).items()]


def gradio_version(project: Path | None = None, lock: str = "requirements.lock") -> str:
    """The Gradio the kit is tested with: the pin in `lock`, else the installed one."""
    path = (project or project_root()) / lock
    if path.exists() and "gradio" in (pins := lock_pins(path)):
        return pins["gradio"]
    try:
        return metadata.version("gradio")
    except metadata.PackageNotFoundError:
        raise RuntimeError(f"Gradio is neither pinned in {path} nor installed") from None


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


def _body(target: Target) -> str:
    kind = {"zerogpu": "a Gradio SDK Space on ZeroGPU", "cpu": "a Gradio SDK Space on CPU Basic"}.get(
        target.name, "a Docker Space"
    )
    zerogpu = (
        "On ZeroGPU the app registers one no-op `@spaces.GPU` function at start (the `spaces` package is in "
        "requirements.txt); it needs no GPU. Select ZeroGPU in the Space's settings if it was created with "
        "other hardware.\n\n"
        if target.name == "zerogpu"
        else ""
    )
    return (
        "# DACA prototype\n\n"
        f"This is {kind}, built by daca_kit: a chat with human review of sensitive messages, stored turns, "
        "analytics counters and a free-tier meter. The Chat and Review tabs and the REST API share one port.\n\n"
        f"What it costs: {target.cost}\n\n"
        f"{zerogpu}"
        "Settings come from the Space's secrets and variables (Settings > Variables and secrets); see the "
        "kit's DESIGN.md for their names. `GET /health` shows which backends are in use and which of their "
        "ports this Space could reach.\n"
    )


def build_space(
    dest: str | Path,
    *,
    target: str | Target = DEFAULT_TARGET,
    project: str | Path | None = None,
    title: str = "DACA prototype",
) -> SpaceFolder:
    """Writes a complete Space folder for `target` at `dest` (emptied first) and returns what it holds."""
    kind = get_target(target)
    source = Path(project) if project else project_root()
    lock = source / kind.lock
    if not lock.exists():
        raise FileNotFoundError(f"{lock} is missing: the {kind.name} Space's requirements are built from it")
    folder = Path(dest)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    sdk_version = gradio_version(source, kind.lock) if kind.sdk == "gradio" else None
    data = kind.front_matter(sdk_version=sdk_version, title=title)
    (folder / "README.md").write_text(render_readme(data, _body(kind)), encoding="utf-8")
    (folder / "requirements.txt").write_text("\n".join(requirements_from_lock(lock)) + "\n", encoding="utf-8")
    shutil.copy2(source / "app.py", folder / "app.py")
    shutil.copytree(source / "daca_kit", folder / "daca_kit", ignore=IGNORE)
    if (source / "components").is_dir():
        shutil.copytree(source / "components", folder / "components", ignore=IGNORE)
    if kind.sdk == "docker":
        for name in DOCKER_FILES:
            if (source / name).exists():
                shutil.copy2(source / name, folder / name)
        if (source / "docker").is_dir():
            shutil.copytree(source / "docker", folder / "docker", ignore=IGNORE)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return SpaceFolder(path=folder, target=kind, front_matter=data, files=files)

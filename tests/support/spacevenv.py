"""A fresh virtual environment for a built Space folder, on the Python its target runs, as the Space
would install it: only the folder's own requirements (or, for Docker, the image's lock and package).

    python = find_python("3.12")                         # an interpreter of that minor version, or None
    venv = space_venv(folder, target, python)            # build/venvs/<target>-<hash>, reused while unchanged

Installing Gradio and its dependencies takes a minute or two, so a venv is kept in build/venvs/ under
a name made of the target, the Python version and a hash of the requirements (for Docker, the lock), and
reused by later runs while that hash holds; the Docker target's package is reinstalled into it on every
call, as the image's builder stage installs it. A venv is marked complete only after its install and
`pip check` succeeded; an interrupted one is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / "build" / "venvs"
UV = Path(sys.prefix) / "bin" / "uv"
DONE = ".daca-complete"


def python_version(python: str | Path) -> str:
    """`3.12.1` for an interpreter; "" when it does not run."""
    try:
        out = subprocess.run(
            [str(python), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def find_python(minor: str) -> Path | None:
    """An interpreter of Python `minor` (e.g. "3.12"): $DACA_PYTHON_3_12, python3.12 on PATH, or pyenv's."""
    candidates: list[Path] = []
    if from_env := os.environ.get("DACA_PYTHON_" + minor.replace(".", "_")):
        candidates.append(Path(from_env))
    if on_path := shutil.which(f"python{minor}"):
        candidates.append(Path(on_path))
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(pyenv.glob(f"{minor}.*/bin/python"), reverse=True)
    for candidate in candidates:
        if python_version(candidate).startswith(minor + "."):
            return candidate
    return None


def _digest(paths: list[Path], python: str) -> str:
    digest = hashlib.sha256(python.encode())
    for path in paths:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=1200, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise AssertionError(f"{what} failed ({' '.join(argv[:4])} ...):\n{tail}")


def space_venv(folder: Path, target: str, python: Path) -> Path:
    """The venv for a built Space folder: its requirements.txt, or for docker the lock and the package."""
    version = python_version(python)
    docker = target == "docker"
    requirements = folder / ("requirements.lock" if docker else "requirements.txt")
    venv = VENVS / f"{target}-py{version}-{_digest([requirements], version)}"
    pip = [str(UV), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python")]
    if not (venv / DONE).exists():
        if venv.exists():
            shutil.rmtree(venv)
        VENVS.mkdir(parents=True, exist_ok=True)
        _run([str(UV), "venv", "--quiet", "--python", str(python), str(venv)], "creating the venv")
        if docker:
            # The Dockerfile's builder stage: the hashed lock alone, every file checked, no resolution.
            _run([*pip, "--require-hashes", "--no-deps", "-r", str(requirements)], "installing the lock")
        else:
            # What a Gradio SDK Space does with the folder: pip install -r requirements.txt.
            _run([*pip, "-r", str(requirements)], "installing requirements.txt")
        (venv / DONE).write_text(version + "\n")
    if docker:
        # Then the package itself, without dependencies (they are all in the lock), as the image does.
        _run([*pip, "--no-deps", "--reinstall", str(folder)], "installing the package")
    _run([str(UV), "pip", "check", "--python", str(venv / "bin" / "python")], "checking the installed set")
    return venv

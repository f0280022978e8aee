"""The three kinds of Hugging Face Space the kit builds, and what each costs.

    target = TARGETS["zerogpu"]                          # the one a free account may host
    target.front_matter(sdk_version="6.31.0")            # the README's YAML block for it
    print(target.cost)                                   # what it costs, and which page says so

What the Hub's documentation says (huggingface/hub-docs, read in its 2026-08-22 snapshot; the cost
sentences changed on 2026-07-21, commit 34ee0f0 "paid plan required for compute Spaces, ZeroGPU free
tier"):

- `spaces-overview.md`: "Gradio and Docker Spaces run on compute and require a paid plan to create:
  PRO for personal accounts [...]. Free personal accounts in good standing can still host up to 2
  Gradio Spaces running on ZeroGPU." Outbound requests may use ports 80, 443 and 8080 only ("Any
  requests going to other ports will be blocked").
- `spaces-gpus.md`: "CPU Basic has no hourly cost, but creating a new Space that runs on compute
  (Gradio or Docker) requires a paid plan."
- `spaces-zerogpu.md`: free personal accounts "in good standing (verified email, account older than
  30 days) can host up to 2 ZeroGPU Spaces for free"; PRO up to 10; "exclusively compatible with the
  Gradio SDK"; Python 3.12.12 or 3.10.13; "The `@spaces.GPU` decorator is designed to be effect-free
  in non-ZeroGPU environments".
- `spaces-config-reference.md`: `python_version` is "Any valid Python `3.x` or `3.x.x` version",
  default 3.10; `suggested_hardware` lists cpu-basic but no ZeroGPU flavour, so the zerogpu target
  asks for ZeroGPU when it creates the Space (`space_hardware="zero-a10g"`, huggingface_hub's name).

Whether the Hub grants ZeroGPU to a given free account, and which ports a running Space may open,
can only be seen on a live Space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

APP_PORT = 7860
HUB_DOCS = "huggingface/hub-docs docs/hub"


@dataclass(frozen=True)
class Target:
    """One kind of Space: its SDK and hardware, the Python and lock it runs, and what it costs.

    TARGETS["cpu"].python_version  # "3.11"
    """

    name: str
    sdk: str  # "gradio" or "docker": the front matter's `sdk`
    hardware: str  # huggingface_hub's SpaceHardware value, asked for when the Space is created
    python: str  # the Python the lock is compiled for, and the one the build test runs
    python_version: str | None  # the front matter's python_version (None: the Dockerfile's image decides)
    lock: str  # the lock file whose pins become requirements.txt
    plan: str  # "free" or "PRO"
    cost: str  # one sentence, with the page that says so
    summary: str

    @property
    def free(self) -> bool:
        return self.plan == "free"

    def front_matter(
        self, *, sdk_version: str | None = None, title: str = "DACA prototype"
    ) -> dict[str, Any]:
        """The README's YAML front matter that configures a Space of this kind."""
        data: dict[str, Any] = {
            "title": title,
            "emoji": "💬",
            "colorFrom": "blue",
            "colorTo": "indigo",
            "sdk": self.sdk,
        }
        if self.sdk == "gradio":
            if not sdk_version:
                raise ValueError("a Gradio Space needs sdk_version: the Gradio the kit is tested with")
            data["sdk_version"] = sdk_version
            data["python_version"] = self.python_version
            data["app_file"] = "app.py"
            # Sign in with Hugging Face for named reviewers (spaces-oauth.md: `hf_oauth: true`).
            data["hf_oauth"] = True
        else:
            data["app_port"] = APP_PORT
        if self.hardware == "cpu-basic":
            data["suggested_hardware"] = self.hardware
        data["pinned"] = False
        data["license"] = "mit"
        data["short_description"] = "Chat with human review on a free-tier stack (daca_kit)"
        return data


TARGETS: dict[str, Target] = {
    "zerogpu": Target(
        name="zerogpu",
        sdk="gradio",
        hardware="zero-a10g",
        python="3.12",
        python_version="3.12.12",
        lock="requirements-py312.lock",
        plan="free",
        cost=(
            "Free for a personal account in good standing (verified email, older than 30 days), up to 2 "
            f"ZeroGPU Spaces; PRO hosts up to 10 ({HUB_DOCS}/spaces-zerogpu.md, 2026-07-21)."
        ),
        summary="Gradio SDK Space on ZeroGPU hardware, Python 3.12, with the `spaces` package",
    ),
    "cpu": Target(
        name="cpu",
        sdk="gradio",
        hardware="cpu-basic",
        python="3.11",
        python_version="3.11",
        lock="requirements.lock",
        plan="PRO",
        cost=(
            "Needs a paid plan (PRO) to create; CPU Basic then has no hourly cost "
            f"({HUB_DOCS}/spaces-gpus.md and spaces-overview.md, 2026-07-21)."
        ),
        summary="Gradio SDK Space on CPU Basic, Python 3.11",
    ),
    "docker": Target(
        name="docker",
        sdk="docker",
        hardware="cpu-basic",
        python="3.11",
        python_version=None,
        lock="requirements.lock",
        plan="PRO",
        cost=(
            "Needs a paid plan (PRO) to create, like every Space that runs on compute "
            f"({HUB_DOCS}/spaces-overview.md, 2026-07-21); the same image runs on any container host."
        ),
        summary="Docker Space built from the kit's Dockerfile (python:3.11-slim, port 7860, uid 1000)",
    ),
}
DEFAULT_TARGET = "zerogpu"


def get_target(name: str | Target) -> Target:
    """The target called `name`; a ValueError that lists the names otherwise."""
    if isinstance(name, Target):
        return name
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not '{name}'") from None


def target_of(front_matter: dict[str, Any], requirements: str = "") -> Target | None:
    """Which target a built folder is, from its front matter (and requirements.txt); None if neither."""
    sdk = front_matter.get("sdk")
    if sdk == "docker":
        return TARGETS["docker"]
    if sdk != "gradio":
        return None
    zerogpu = str(front_matter.get("python_version", "")).startswith("3.12") or any(
        line.startswith("spaces==") for line in requirements.splitlines()
    )
    return TARGETS["zerogpu" if zerogpu else "cpu"]


def describe_targets() -> str:
    """One line per target: name, plan, what it is and what it costs (for the CLI and notebook 02)."""
    return "\n".join(f"{t.name:<8} [{t.plan}] {t.summary}. {t.cost}" for t in TARGETS.values())

"""ZeroGPU: what a Gradio Space on ZeroGPU hardware needs that no other host does.

    gpu = register_zero_gpu(settings)     # None off ZeroGPU; on it, the registered no-op function

Hugging Face sets `SPACES_ZERO_GPU=true` on a ZeroGPU Space (the `spaces` package reads the same
variable, `spaces/config.py`). There the `spaces` package expects GPU work to be decorated with
`@spaces.GPU`; the kit does no GPU work, so it registers one no-op function and never calls it.
`spaces` reports its decorated functions to the platform from a hook on Gradio's `Blocks.launch`; the
kit serves Gradio mounted on its own FastAPI app under uvicorn and never calls `launch`, so it sends
the same startup report itself (`spaces.zero.startup`, spaces 0.51). Off ZeroGPU nothing here runs
and `spaces` is not imported: it is a requirement of the zerogpu Space target only, and the docs call
`@spaces.GPU` "effect-free in non-ZeroGPU environments" anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from daca_kit.errors import ConfigError, DacaError
from daca_kit.settings import Settings

log = logging.getLogger(__name__)

MISSING_SPACES = (
    "This Space runs on ZeroGPU (SPACES_ZERO_GPU is set) but the `spaces` package is not installed: "
    "rebuild the Space folder with `daca-kit space build --target zerogpu`, whose requirements.txt pins it."
)


def zero_gpu_noop() -> None:
    """No GPU work: ZeroGPU only needs one function decorated with @spaces.GPU."""


def register_zero_gpu(settings: Settings) -> Callable[[], Any] | None:
    """On ZeroGPU, decorates `zero_gpu_noop` with @spaces.GPU and reports it to the platform; else None."""
    if not settings.zero_gpu:
        return None
    try:
        import spaces
        from spaces.config import Config
    except ImportError:
        raise ConfigError(MISSING_SPACES) from None
    gpu: Callable[[], Any] = spaces.GPU(zero_gpu_noop)
    if not Config.zero_gpu:
        # SPACES_ZERO_GPU came from a .env file, not the process environment, which is all `spaces` reads.
        log.warning(
            "SPACES_ZERO_GPU is set in settings but not in the environment: @spaces.GPU stays a no-op"
        )
        return gpu
    import spaces.zero

    try:
        spaces.zero.startup()
    except RuntimeError as exc:
        raise DacaError(
            f"ZeroGPU did not accept the app's startup report ({exc}): restart the Space; if it persists, "
            "select other hardware in the Space's settings."
        ) from exc
    log.info("ZeroGPU: registered the no-op @spaces.GPU function and sent the startup report")
    return gpu

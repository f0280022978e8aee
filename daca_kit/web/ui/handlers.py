"""What every tab's event handlers share: the kit's errors shown as sentences, and the private options.

    @readable_errors
    def chat_tick(self, session, browser): ...      # a DacaError reaches the page as its sentence

`PRIVATE` keeps an event's function out of the API docs and gradio_client (it still goes through the
queue, so the functions that need a login check it themselves).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from daca_kit.errors import DacaError

log = logging.getLogger(__name__)

UNEXPECTED = "Something went wrong on the server; the details are in its log. Please try again."
PRIVATE: dict[str, Any] = {"api_visibility": "private", "queue": True}


def readable_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turns the kit's errors into the sentence they carry, and anything else into a generic one (logged)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except DacaError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception:  # noqa: BLE001 - the page gets a sentence; the log gets the traceback
            log.exception("%s failed", fn.__name__)
            raise gr.Error(UNEXPECTED, print_exception=False) from None

    return wrapper

"""Reading one Gemini reply stream (the chunks of `generate_content_stream`) for `GeminiReplyModel.stream`.

    last = read_reply_stream(chunks, pieces, on_chunk, deadline=d, timeout=30.0, translate=translate)

Each chunk's text is kept in `pieces` and handed to `on_chunk` as it arrives. Until the first piece went
out, a failure leaves as it came, for the model's retry policy; after that it fails the reply with a
sentence saying so (a retry would repeat what the listener already has). `deadline` bounds the whole
stream (GEMINI_TIMEOUT), not only the wait for each chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from google.genai import types

from daca_kit.errors import ModelError


def read_reply_stream(
    chunks: Iterable[types.GenerateContentResponse],
    pieces: list[str],
    on_chunk: Callable[[str], None],
    *,
    deadline: float,
    timeout: float,
    translate: Callable[[BaseException], ModelError | None],
) -> types.GenerateContentResponse | None:
    """Hands on each chunk's text; returns the last chunk (its feedback explains an empty reply)."""
    last = None
    try:
        for chunk in chunks:
            last = chunk
            text = chunk.text or ""
            if text:
                pieces.append(text)
                on_chunk(text)
            if time.monotonic() > deadline:
                raise ModelError(
                    f"Gemini did not finish its reply within {timeout:g} s: try again shortly, "
                    "or raise GEMINI_TIMEOUT."
                )
    except Exception as exc:
        if not pieces:
            raise  # nothing handed on yet: the retry policy decides
        error = exc if isinstance(exc, ModelError) else translate(exc)
        if error is None:
            raise
        raise ModelError(f"The Gemini reply broke off after it had begun: {error}") from exc
    return last

"""The Gemini reply model, through the `google-genai` SDK (the Gemini Developer API, keyed by GEMINI_API_KEY).

Retries are ours, not the SDK's: the client is built with `HttpRetryOptions(attempts=1)` and `generate`
retries 408, 429, 5xx, timeouts and connection errors with exponential backoff (`backoff`, `2*backoff`,
...) up to `max_retries` attempts in all, within one deadline: `timeout` (GEMINI_TIMEOUT) is the longest
a reply may take, retries included, and each attempt gets only the time left (a model that stopped
answering costs a chat turn GEMINI_TIMEOUT, not one timeout per attempt). Every failure leaves as a
`ModelError` whose message says which setting to change; the API key never appears in a message or a log line.

`stream` asks for the same reply through `generate_content_stream` (REST `:streamGenerateContent?alt=sse`,
Server-Sent Events, as google-genai's `models.py` sends it) and hands each piece on as it arrives
(`gemini_stream`). It retries like `generate` until the first piece has been handed on; a stream that breaks
off after that fails the reply (a retry would repeat what the listener already has). GEMINI_TIMEOUT bounds
the whole stream, not only the wait for each piece.

Usage:
    model = GeminiReplyModel(api_key, DEFAULT_GEMINI_MODEL)
    reply = model.generate(ReplyRequest(user_id="u1", text="Hello", message_count=3))
    reply = model.stream(request, lambda piece: print(piece, end=""))
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from google import genai
from google.genai import types

from daca_kit.adapters.gemini_errors import KEY_HELP, SERVER, GeminiFailures
from daca_kit.adapters.gemini_stream import read_reply_stream
from daca_kit.adapters.network import elapsed_ms, reach
from daca_kit.core.models import Backend, Reply, ReplyRequest, RoundTrip
from daca_kit.errors import ConfigError, ModelError
from daca_kit.settings import DEFAULT_GEMINI_MODEL

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
MIN_ATTEMPT_SECONDS = 0.5  # no retry starts with less of GEMINI_TIMEOUT left than this

T = TypeVar("T")


class GeminiReplyModel:
    """Replies with a Gemini model; raises `ModelError` with a sentence naming the setting to fix.

    Usage:
        model = GeminiReplyModel(settings_key, "gemini-3.8-flash", timeout=30.0)
        model.ping()   # checks the key and the model name with one cheap call
        model.check()  # for `doctor`: opens the API's port first, then pings (see `Checkable`)
        reply = model.generate(request)
    """

    def __init__(
        self,
        api_key: str,
        model: str,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key or not api_key.strip():
            raise ConfigError(
                f"GEMINI_API_KEY is empty: set it to a key from {KEY_HELP}, or unset it to use the offline model."
            )
        if not model or not model.strip():
            raise ConfigError(
                f"GEMINI_MODEL is empty: set it to a current model, e.g. {DEFAULT_GEMINI_MODEL}."
            )
        if timeout <= 0:
            raise ConfigError("GEMINI_TIMEOUT must be a positive number of seconds.")
        if max_retries < 1:
            raise ConfigError("The Gemini retry limit must be at least 1 attempt.")
        self.model = model.strip()
        self.name = f"gemini:{self.model}"
        self.backend = Backend("gemini", self.name, f"Google Gemini ({self.model})")
        self.calls = 0  # requests sent, retries included (each is a request against the quota)
        self._calls_lock = threading.Lock()
        self._key = api_key.strip()
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = backoff
        self._sleep = sleep
        self._base_url = base_url or None
        self._failures = GeminiFailures(self.model, self._key, timeout, self._base_url)
        self._client = genai.Client(
            api_key=self._key,
            vertexai=False,  # the Gemini Developer API, whatever GOOGLE_GENAI_USE_VERTEXAI says
            http_options=types.HttpOptions(
                base_url=base_url or None,
                timeout=max(1, round(timeout * 1000)),  # milliseconds
                retry_options=types.HttpRetryOptions(attempts=1),  # the retry policy is ours
            ),
        )

    def __repr__(self) -> str:
        return f"GeminiReplyModel(model={self.model!r})"  # never the key

    def generate(self, request: ReplyRequest) -> Reply:
        instruction = self._system_instruction(request)
        contents = self._contents(request)

        def attempt(seconds_left: float) -> types.GenerateContentResponse:
            config = self._config(instruction, seconds_left)
            return self._client.models.generate_content(model=self.model, contents=contents, config=config)

        response, attempts = self._with_retries(attempt)
        return self._reply(response.text or "", response, attempts)

    def stream(self, request: ReplyRequest, on_chunk: Callable[[str], None]) -> Reply:
        """`generate`, handing on each piece of the reply as Gemini sends it (see the module docstring)."""
        instruction = self._system_instruction(request)
        contents = self._contents(request)
        pieces: list[str] = []

        def attempt(seconds_left: float) -> types.GenerateContentResponse | None:
            config = self._config(instruction, seconds_left)
            chunks = self._client.models.generate_content_stream(
                model=self.model, contents=contents, config=config
            )
            return read_reply_stream(
                chunks,
                pieces,
                on_chunk,
                deadline=time.monotonic() + seconds_left,
                timeout=self._timeout,
                translate=lambda exc: self._failures.translate(exc, attempts=1),
            )

        last, attempts = self._with_retries(attempt)
        return self._reply("".join(pieces), last, attempts)

    def _reply(self, text: str, response: types.GenerateContentResponse | None, attempts: int) -> Reply:
        text = text.strip()
        if not text:
            raise ModelError(self._failures.empty_reply_sentence(response))
        logger.debug("Gemini model %s replied after %d attempt(s)", self.model, attempts)
        return Reply(
            text=text,
            model=self.name,
            offline=False,
            metadata={"model": self.model, "attempts": attempts},
        )

    @staticmethod
    def _config(instruction: str, seconds_left: float) -> types.GenerateContentConfig:
        return types.GenerateContentConfig(
            system_instruction=instruction,
            # No tools are passed; turning automatic function calling off also keeps the SDK quiet.
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            http_options=types.HttpOptions(timeout=max(1, round(seconds_left * 1000))),  # milliseconds
        )

    def ping(self) -> None:
        """One cheap call (reads the model's metadata, costs no tokens): checks the key and the model name."""
        try:
            self._client.models.get(model=self.model)
        except Exception as exc:
            error = self._failures.translate(exc, attempts=1)
            if error is None:
                raise
            raise error from exc

    def check(self) -> RoundTrip:
        """Opens the API's port, then `ping` (see `Checkable`)."""
        start = time.perf_counter()
        host, port = self._failures.address()
        try:
            reach(host, port, setting="GEMINI_BASE_URL", what=SERVER, timeout=self._timeout, error=ModelError)
        except ModelError as exc:
            raise self._failures.unreachable(exc) from None
        self.ping()
        return RoundTrip(elapsed_ms(start), f"Gemini accepted the key and knows model '{self.model}'.")

    def close(self) -> None:
        """Releases the HTTP connections."""
        self._client.close()

    # prompt

    @staticmethod
    def _system_instruction(request: ReplyRequest) -> str:
        lines = ["You are a helpful assistant in a chat service. Answer the user's latest message clearly."]
        if request.message_count is not None:
            lines.append(f"The user's message count so far is {request.message_count}.")
        if request.history:
            lines.append("Earlier turns of this conversation come before the latest message, oldest first.")
        return " ".join(lines)

    @staticmethod
    def _contents(request: ReplyRequest) -> list[types.Content]:
        contents: list[types.Content] = []
        for turn in request.history:  # oldest first, as the port promises
            contents.append(
                types.Content(role="user", parts=[types.Part.from_text(text=turn.message or "...")])
            )
            contents.append(
                types.Content(role="model", parts=[types.Part.from_text(text=turn.reply or "...")])
            )
        contents.append(types.Content(role="user", parts=[types.Part.from_text(text=request.text)]))
        return contents

    # errors and retries

    def _with_retries(self, call: Callable[[float], T]) -> tuple[T, int]:
        """`call(seconds_left)` until it succeeds, fails for good, or GEMINI_TIMEOUT has passed."""
        deadline = time.monotonic() + self._timeout
        attempt = 1
        while True:
            with self._calls_lock:
                self.calls += 1
            try:
                return call(max(0.001, deadline - time.monotonic())), attempt
            except Exception as exc:
                error = self._failures.translate(exc, attempts=attempt)
                if error is None:
                    raise
                delay = min(self._backoff * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
                left = deadline - time.monotonic() - delay
                if not error.retryable or attempt >= self._max_retries or left < MIN_ATTEMPT_SECONDS:
                    raise error from exc
                logger.warning(
                    "Gemini call failed (%s), attempt %d of %d; retrying in %.2f s",
                    self._failures.short(exc),
                    attempt,
                    self._max_retries,
                    delay,
                )
                self._sleep(delay)
                attempt += 1

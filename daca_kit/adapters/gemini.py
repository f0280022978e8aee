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

import importlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from daca_kit.adapters.gemini_stream import read_reply_stream
from daca_kit.adapters.network import chain_text, elapsed_ms, looks_tls, reach, unreachable
from daca_kit.core.models import Backend, Reply, ReplyRequest, RoundTrip
from daca_kit.errors import AUTH, MISSING, TLS, BackendError, ConfigError, ModelError
from daca_kit.settings import DEFAULT_GEMINI_MODEL

logger = logging.getLogger(__name__)

KEY_HELP = "https://aistudio.google.com/apikey"
GEMINI_HOST = "generativelanguage.googleapis.com"  # where the SDK sends requests without GEMINI_BASE_URL
MAX_BACKOFF_SECONDS = 30.0
MIN_ATTEMPT_SECONDS = 0.5  # no retry starts with less of GEMINI_TIMEOUT left than this

T = TypeVar("T")


def _transport_classes(name: str) -> tuple[type[BaseException], ...]:
    # google-genai >= 3 sends through httpx2 by default and through httpx before (or when
    # GOOGLE_GENAI_HTTP_CLIENT=httpx); the two packages have separate exception classes.
    found: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


_TIMEOUT_ERRORS = _transport_classes("TimeoutException")
_TRANSPORT_ERRORS = _transport_classes("TransportError")
_BAD_URL_ERRORS = _transport_classes("UnsupportedProtocol")
_RETRYABLE_STATUS = {408, 429}
_SERVER = "the Gemini API (or the proxy in GEMINI_BASE_URL)"


def gemini_address(base_url: str | None) -> tuple[str, str, int]:
    """(scheme, host, port) the model sends requests to: GEMINI_BASE_URL's, else Google's API."""
    parts = urlsplit(base_url or f"https://{GEMINI_HOST}")
    scheme = parts.scheme or "https"
    return scheme, parts.hostname or GEMINI_HOST, parts.port or (80 if scheme == "http" else 443)


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
                translate=lambda exc: self._translate(exc, attempts=1),
            )

        last, attempts = self._with_retries(attempt)
        return self._reply("".join(pieces), last, attempts)

    def _reply(self, text: str, response: types.GenerateContentResponse | None, attempts: int) -> Reply:
        text = text.strip()
        if not text:
            raise ModelError(self._empty_reply_sentence(response))
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
            error = self._translate(exc, attempts=1)
            if error is None:
                raise
            raise error from exc

    def check(self) -> RoundTrip:
        """Opens the API's port, then `ping` (see `Checkable`)."""
        start = time.perf_counter()
        host, port = self._address()
        try:
            reach(
                host, port, setting="GEMINI_BASE_URL", what=_SERVER, timeout=self._timeout, error=ModelError
            )
        except ModelError as exc:
            raise self._unreachable(exc) from None
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
                error = self._translate(exc, attempts=attempt)
                if error is None:
                    raise
                delay = min(self._backoff * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
                left = deadline - time.monotonic() - delay
                if not error.retryable or attempt >= self._max_retries or left < MIN_ATTEMPT_SECONDS:
                    raise error from exc
                logger.warning(
                    "Gemini call failed (%s), attempt %d of %d; retrying in %.2f s",
                    self._short(exc),
                    attempt,
                    self._max_retries,
                    delay,
                )
                self._sleep(delay)
                attempt += 1

    def _translate(self, exc: BaseException, *, attempts: int) -> ModelError | None:
        """The ModelError for a third-party exception, or None when it is not one we know (a bug: re-raise)."""
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        if isinstance(exc, genai_errors.APIError):
            code = int(exc.code or 0)
            status = exc.status or ""
            label = f"{code} {status}".strip()
            if code in (401, 403) or (code == 400 and self._is_key_error(exc)):
                return ModelError(
                    f"Gemini refused the API key ({label}): set GEMINI_API_KEY to a valid key from {KEY_HELP}.",
                    status=code,
                    problem=AUTH,
                )
            if code == 404:
                return ModelError(
                    f"GEMINI_MODEL '{self.model}' was not found: set GEMINI_MODEL to a current model, "
                    f"e.g. {DEFAULT_GEMINI_MODEL}",
                    status=code,
                    problem=MISSING,
                )
            if code == 429:
                return ModelError(
                    f"Gemini is rate limiting this key ({label}) {tries}: wait a minute and try again, "
                    "or check the free-tier quota of the project behind GEMINI_API_KEY.",
                    retryable=True,
                    status=code,
                )
            if code >= 500 or code in _RETRYABLE_STATUS:
                return ModelError(
                    f"Gemini failed with {label} {tries}: the service is having trouble, try again shortly.",
                    retryable=True,
                    status=code,
                )
            message = self._scrub(exc.message or "no details")
            return ModelError(f"Gemini rejected the request ({label}): {message}", status=code or None)
        if isinstance(exc, _TIMEOUT_ERRORS):
            return ModelError(
                f"Gemini did not answer within {self._timeout:g} s {tries}: try again shortly, "
                "or raise GEMINI_TIMEOUT.",
                retryable=True,
            )
        if isinstance(exc, _BAD_URL_ERRORS):
            return ModelError(
                "GEMINI_BASE_URL is not an http(s) URL: fix it or unset it to use Google's API."
            )
        if isinstance(exc, _TRANSPORT_ERRORS):
            host, port = self._address()
            found = unreachable(exc, host, port, setting="GEMINI_BASE_URL", what=_SERVER, error=ModelError)
            if found is not None:
                return self._unreachable(found)
            if looks_tls(chain_text(exc)):
                where = "GEMINI_BASE_URL and " if self._base_url else ""
                return ModelError(
                    f"The TLS handshake with {host} failed: check {where}this host's CA certificates.",
                    retryable=True,
                    problem=TLS,
                )
            return ModelError(
                f"Could not reach Gemini ({type(exc).__name__}) {tries}: check the network connection, "
                "and GEMINI_BASE_URL if it is set.",
                retryable=True,
            )
        if isinstance(exc, genai_errors.UnknownApiResponseError):
            return ModelError(
                "Gemini sent a response that is not JSON: check GEMINI_BASE_URL if it is set, and try again."
            )
        return None

    def _address(self) -> tuple[str, int]:
        _scheme, host, port = gemini_address(self._base_url)
        return host, port

    def _unreachable(self, found: BackendError) -> ModelError:
        """`found` (DNS or PORT_CLOSED) as the model says it: without GEMINI_BASE_URL the host is in no setting."""
        if self._base_url:
            return ModelError(str(found), retryable=True, problem=found.problem)
        host, port = self._address()
        return ModelError(
            f"This host cannot reach the Gemini API at {host}:{port} ({found.problem}): it needs DNS and "
            "outbound HTTPS; set GEMINI_BASE_URL to a proxy it can reach, or unset GEMINI_API_KEY to use "
            "the offline model.",
            retryable=True,
            problem=found.problem,
        )

    @staticmethod
    def _is_key_error(exc: genai_errors.APIError) -> bool:
        # The Gemini API answers a wrong key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
        details = exc.details.get("error", exc.details) if isinstance(exc.details, dict) else {}
        for item in details.get("details") or []:
            if isinstance(item, dict) and str(item.get("reason", "")).startswith("API_KEY"):
                return True
        return "api key" in (exc.message or "").lower()

    @staticmethod
    def _empty_reply_sentence(response: types.GenerateContentResponse | None) -> str:
        if response is None:
            return "Gemini returned an empty reply: try again."
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            reason = getattr(feedback.block_reason, "value", feedback.block_reason)
            return f"Gemini blocked the message ({reason}) and gave no reply: rephrase it and try again."
        finish = response.candidates[0].finish_reason if response.candidates else None
        if finish is not None and getattr(finish, "value", finish) != "STOP":
            return (
                f"Gemini returned no text (finish reason {getattr(finish, 'value', finish)}): "
                "rephrase the message and try again."
            )
        return "Gemini returned an empty reply: try again."

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "[GEMINI_API_KEY]")[:300]

    def _short(self, exc: BaseException) -> str:
        if isinstance(exc, genai_errors.APIError):
            return f"{exc.code} {exc.status or ''}".strip()
        return type(exc).__name__

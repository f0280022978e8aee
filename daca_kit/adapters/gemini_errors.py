"""What a Gemini failure means: one `ModelError` sentence per third-party exception, naming the setting to fix.

The API key never appears in a sentence (`scrub`). `GeminiReplyModel` retries the failures marked retryable.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from google.genai import errors as genai_errors
from google.genai import types

from daca_kit.adapters.network import chain_text, looks_tls, unreachable
from daca_kit.errors import AUTH, MISSING, TLS, BackendError, ModelError
from daca_kit.settings import DEFAULT_GEMINI_MODEL

KEY_HELP = "https://aistudio.google.com/apikey"
GEMINI_HOST = "generativelanguage.googleapis.com"  # where the SDK sends requests without GEMINI_BASE_URL
SERVER = "the Gemini API (or the proxy in GEMINI_BASE_URL)"


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


def gemini_address(base_url: str | None) -> tuple[str, str, int]:
    """(scheme, host, port) the model sends requests to: GEMINI_BASE_URL's, else Google's API."""
    parts = urlsplit(base_url or f"https://{GEMINI_HOST}")
    scheme = parts.scheme or "https"
    return scheme, parts.hostname or GEMINI_HOST, parts.port or (80 if scheme == "http" else 443)


@dataclass(frozen=True)
class GeminiFailures:
    """The sentences of one model's failures (its name, key, GEMINI_TIMEOUT and GEMINI_BASE_URL)."""

    model: str
    key: str
    timeout: float
    base_url: str | None

    def translate(self, exc: BaseException, *, attempts: int) -> ModelError | None:
        """The ModelError for a third-party exception, or None when it is not one we know (a bug: re-raise)."""
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        if isinstance(exc, genai_errors.APIError):
            code = int(exc.code or 0)
            status = exc.status or ""
            label = f"{code} {status}".strip()
            if code in (401, 403) or (code == 400 and self.is_key_error(exc)):
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
            message = self.scrub(exc.message or "no details")
            return ModelError(f"Gemini rejected the request ({label}): {message}", status=code or None)
        if isinstance(exc, _TIMEOUT_ERRORS):
            return ModelError(
                f"Gemini did not answer within {self.timeout:g} s {tries}: try again shortly, "
                "or raise GEMINI_TIMEOUT.",
                retryable=True,
            )
        if isinstance(exc, _BAD_URL_ERRORS):
            return ModelError(
                "GEMINI_BASE_URL is not an http(s) URL: fix it or unset it to use Google's API."
            )
        if isinstance(exc, _TRANSPORT_ERRORS):
            host, port = self.address()
            found = unreachable(exc, host, port, setting="GEMINI_BASE_URL", what=SERVER, error=ModelError)
            if found is not None:
                return self.unreachable(found)
            if looks_tls(chain_text(exc)):
                where = "GEMINI_BASE_URL and " if self.base_url else ""
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

    def address(self) -> tuple[str, int]:
        _scheme, host, port = gemini_address(self.base_url)
        return host, port

    def unreachable(self, found: BackendError) -> ModelError:
        """`found` (DNS or PORT_CLOSED) as the model says it: without GEMINI_BASE_URL the host is in no setting."""
        if self.base_url:
            return ModelError(str(found), retryable=True, problem=found.problem)
        host, port = self.address()
        return ModelError(
            f"This host cannot reach the Gemini API at {host}:{port} ({found.problem}): it needs DNS and "
            "outbound HTTPS; set GEMINI_BASE_URL to a proxy it can reach, or unset GEMINI_API_KEY to use "
            "the offline model.",
            retryable=True,
            problem=found.problem,
        )

    @staticmethod
    def is_key_error(exc: genai_errors.APIError) -> bool:
        # The Gemini API answers a wrong key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
        details = exc.details.get("error", exc.details) if isinstance(exc.details, dict) else {}
        for item in details.get("details") or []:
            if isinstance(item, dict) and str(item.get("reason", "")).startswith("API_KEY"):
                return True
        return "api key" in (exc.message or "").lower()

    @staticmethod
    def empty_reply_sentence(response: types.GenerateContentResponse | None) -> str:
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

    def scrub(self, text: str) -> str:
        return text.replace(self.key, "[GEMINI_API_KEY]")[:300]

    def short(self, exc: BaseException) -> str:
        if isinstance(exc, genai_errors.APIError):
            return f"{exc.code} {exc.status or ''}".strip()
        return type(exc).__name__

"""The kit's exceptions, one small tree.

    DacaError
    ├── ConfigError          a setting is missing or malformed (names the setting, never its value)
    ├── BackendError         a backend failed; `.backend` names which one ("database", "counters", ...)
    │   ├── ModelError       the reply model failed (Gemini 401/404/429/5xx, timeouts)
    │   ├── BusError         the event bus failed to publish or consume
    │   └── CountersError    the analytics counters failed
    ├── InputError           the request is invalid (HTTP 422)
    ├── RateLimited          the user sent too many messages (HTTP 429, `.retry_after` seconds)
    ├── NotFound             unknown id (HTTP 404)
    ├── AlreadyDecided       the review was decided before (HTTP 409)
    └── WorkflowError        the workflow definition broke a rule (e.g. non-deterministic replay)

Every message is a sentence a user can act on.
"""

from __future__ import annotations


class DacaError(Exception):
    """Base of every error the kit raises on purpose."""


class ConfigError(DacaError):
    """A setting is missing or malformed."""


class BackendError(DacaError):
    """A backend call failed; `backend` names the feature it degrades."""

    backend = "backend"

    def __init__(self, message: str, *, backend: str | None = None) -> None:
        super().__init__(message)
        if backend is not None:
            self.backend = backend


class ModelError(BackendError):
    """The reply model failed. `retryable` is true for rate limits, 5xx and timeouts."""

    backend = "model"

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class BusError(BackendError):
    backend = "events"


class CountersError(BackendError):
    backend = "counters"


class InputError(DacaError):
    """The request is invalid."""


class RateLimited(DacaError):
    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(DacaError):
    pass


class AlreadyDecided(DacaError):
    pass


class WorkflowError(DacaError):
    pass

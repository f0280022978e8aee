"""The kit's exceptions, one small tree.

    DacaError
    ├── ConfigError          a setting is missing or malformed (names the setting, never its value)
    ├── BackendError         a backend failed; `.backend` names which one ("database", "counters", ...),
    │   │                    `.problem` why (DNS, PORT_CLOSED, TLS, AUTH, MISSING or ERROR, below)
    │   ├── ModelError       the reply model failed (Gemini 401/404/429/5xx, timeouts)
    │   ├── BusError         the event bus failed to publish or consume
    │   └── CountersError    the analytics counters failed
    ├── InputError           the request is invalid (HTTP 422)
    ├── RateLimited          the user sent too many messages (HTTP 429, `.retry_after` seconds)
    ├── NotFound             unknown id (HTTP 404)
    ├── AlreadyDecided       the review was decided before (HTTP 409)
    └── WorkflowError        the workflow definition broke a rule (e.g. non-deterministic replay)

Every message is a sentence a user can act on. An adapter that knows why a call failed says so in
`BackendError.problem`, one of the kinds below, in the order a connection meets them; `daca-kit doctor`
shows the kind beside the adapter's own sentence, so the running app and the doctor say the same thing.
"""

from __future__ import annotations

DNS = "name did not resolve"
PORT_CLOSED = "TCP port closed from this host"
TLS = "TLS failed"
AUTH = "authentication failed"
MISSING = "table or permission missing"
ERROR = "error"


class DacaError(Exception):
    """Base of every error the kit raises on purpose."""


class ConfigError(DacaError):
    """A setting is missing or malformed."""


class BackendError(DacaError):
    """A backend call failed; `backend` names the feature it degrades, `problem` the kind of failure.

    Usage: raise CountersError("Redis at h:6379 refused the password: check ...", problem=AUTH) from exc
    """

    backend = "backend"

    def __init__(self, message: str, *, backend: str | None = None, problem: str = ERROR) -> None:
        super().__init__(message)
        if backend is not None:
            self.backend = backend
        self.problem = problem


class ModelError(BackendError):
    """The reply model failed. `retryable` is true for rate limits, 5xx and timeouts."""

    backend = "model"

    def __init__(
        self, message: str, *, retryable: bool = False, status: int | None = None, problem: str = ERROR
    ) -> None:
        super().__init__(message, problem=problem)
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

"""The Dapr sidecar's HTTP API: where it is, whether it is ready, and one call with its errors translated.

    sidecar = checked_sidecar(settings)        # ConfigError naming the command to run when none answers
    trip = DaprSidecar.from_settings(settings, timeout=3.0).check()   # `daca-kit doctor`'s round trip
    response = sidecar.request("GET", "/v1.0/state/statestore/k", what="read the count", error=CountersError)

The app runs next to a sidecar, started for example with

    dapr run --app-id daca-kit --app-port 7860 --resources-path components -- python app.py
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from daca_kit.adapters.network import elapsed_ms, reach
from daca_kit.core.models import RoundTrip
from daca_kit.errors import BackendError, ConfigError

if TYPE_CHECKING:
    from daca_kit.settings import Settings

APP_ID = "daca-kit"
DAPR_RUN = "dapr run --app-id daca-kit --app-port 7860 --resources-path components -- python app.py"
HEALTH_PATH = "/v1.0/healthz/outbound"  # ready once components load; /v1.0/healthz also waits for the app
DEFAULT_STARTUP_WAIT = 5.0


def sidecar_address(settings: Settings | None = None) -> tuple[str, str]:
    """The sidecar's HTTP base URL and the setting that chose it (for messages)."""
    if settings is not None and settings.dapr_http_endpoint:
        return settings.dapr_http_endpoint.rstrip("/"), "DAPR_HTTP_ENDPOINT"
    if os.environ.get("DAPR_HTTP_ENDPOINT"):
        return os.environ["DAPR_HTTP_ENDPOINT"].rstrip("/"), "DAPR_HTTP_ENDPOINT"
    host = os.environ.get("DAPR_RUNTIME_HOST") or "127.0.0.1"
    port = os.environ.get("DAPR_HTTP_PORT") or "3500"
    return f"http://{host}:{port}", "DAPR_HTTP_PORT"


def startup_wait() -> float:
    """Seconds to wait for a sidecar that is still starting: DAPR_HEALTH_TIMEOUT (the SDK's name), or 5."""
    raw = os.environ.get("DAPR_HEALTH_TIMEOUT")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_STARTUP_WAIT
    except ValueError:
        raise ConfigError("DAPR_HEALTH_TIMEOUT must be a number of seconds, such as 5") from None


class DaprSidecar:
    """An HTTP client for one sidecar's API (httpx). `transport` lets tests pass a MockTransport."""

    def __init__(
        self,
        endpoint: str,
        *,
        setting: str = "DAPR_HTTP_PORT",
        timeout: float = 5.0,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.setting = setting
        self.timeout = timeout
        headers = {"dapr-api-token": token} if token else {}
        self.client = httpx.Client(
            base_url=self.endpoint, timeout=timeout, headers=headers, transport=transport
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, timeout: float = 5.0, transport: httpx.BaseTransport | None = None
    ) -> DaprSidecar:
        endpoint, setting = sidecar_address(settings)
        token = os.environ.get("DAPR_API_TOKEN") or None
        return cls(endpoint, setting=setting, timeout=timeout, token=token, transport=transport)

    def request(
        self, method: str, path: str, *, what: str, error: type[BackendError], **kwargs: Any
    ) -> httpx.Response:
        """One call; connection problems become `error` with a sentence naming the sidecar."""
        try:
            try:
                response = self.client.request(method, path, **kwargs)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                # Once more on a fresh connection: the sidecar may have closed an idle keep-alive one.
                # Safe for writes too: saves carry ETags and events carry ids that consumers deduplicate.
                response = self.client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise error(
                f"Could not {what}: the Dapr sidecar at {self.endpoint} did not answer in time; "
                "check that daprd is running and its state store and broker are reachable"
            ) from exc
        except httpx.HTTPError as exc:
            raise error(
                f"Could not {what}: no Dapr sidecar answered at {self.endpoint} ({self.setting}); "
                f"start the app with `{DAPR_RUN}`, or set DACA_RUNTIME=local"
            ) from exc
        if response.status_code == 401:
            raise error(
                f"Could not {what}: the Dapr sidecar refused the API token: set DAPR_API_TOKEN to daprd's token"
            )
        return response

    def probe(self, timeout: float = 1.0) -> str | None:
        """None when the sidecar is ready for calls, else what is wrong."""
        try:
            response = self.client.get(HEALTH_PATH, timeout=timeout)
        except httpx.HTTPError:
            return "unreachable"
        if 200 <= response.status_code < 300:
            return None
        return f"status {response.status_code}"

    def check(self) -> RoundTrip:
        """Opens the sidecar's port, then asks its health endpoint; BackendError with a sentence if not ready."""
        start = time.perf_counter()
        parts = urlsplit(self.endpoint)
        host, port = parts.hostname or "127.0.0.1", parts.port or 3500
        reach(host, port, setting=self.setting, what="the Dapr sidecar (daprd)", timeout=self.timeout)
        answer = self.probe(self.timeout)
        if answer is not None:
            raise BackendError(
                f"The Dapr sidecar at {self.endpoint} is not ready ({HEALTH_PATH} answered {answer}): its "
                "components (components/*.yaml) did not load; read daprd's log.",
                backend="dapr",
            )
        return RoundTrip(elapsed_ms(start), "the Dapr sidecar is healthy.")

    def close(self) -> None:
        self.client.close()


def checked_sidecar(
    settings: Settings, *, wait: float | None = None, transport: httpx.BaseTransport | None = None
) -> DaprSidecar:
    """A sidecar client that has answered its health check (else ConfigError, client closed)."""
    sidecar = DaprSidecar.from_settings(settings, transport=transport)
    try:
        require_sidecar(sidecar, wait=wait)
    except ConfigError:
        sidecar.close()
        raise
    return sidecar


def require_sidecar(sidecar: DaprSidecar, *, wait: float | None = None) -> None:
    """Returns once GET /v1.0/healthz/outbound succeeds; raises ConfigError after `wait` seconds."""
    wait = startup_wait() if wait is None else wait
    deadline = time.monotonic() + wait
    while True:
        problem = sidecar.probe(timeout=min(1.0, max(0.2, wait)))
        if problem is None:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
    if problem == "unreachable":
        raise ConfigError(
            f"No Dapr sidecar answered at {sidecar.endpoint} ({sidecar.setting}): start the app with "
            f"`{DAPR_RUN}`, or set DACA_RUNTIME=local"
        )
    raise ConfigError(
        f"The Dapr sidecar at {sidecar.endpoint} is not ready ({HEALTH_PATH} answered {problem}): a component "
        "failed to load (see the daprd log: components/statestore.yaml, components/pubsub.yaml and their "
        "secrets), or set DACA_RUNTIME=local"
    )


def dapr_error(response: httpx.Response) -> tuple[str, str]:
    """(errorCode, message) from a Dapr error response; message cut short, never a secret we sent."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:300]
    if not isinstance(body, dict):
        return "", str(body)[:300]
    return str(body.get("errorCode") or ""), str(body.get("message") or "")[:300]

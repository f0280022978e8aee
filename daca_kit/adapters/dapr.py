"""The Dapr adapters (`DACA_RUNTIME=dapr`): workflows, counters and events through a Dapr sidecar.

    runtime = DaprWorkflowRuntime.from_settings(settings, workflows={"chat_turn": chat_turn},
                                                activities=activities.as_dict())
    counters = DaprCounters.from_settings(settings)     # state API, store DACA_DAPR_STATESTORE
    bus = DaprEventBus.from_settings(settings)          # pub/sub API, component DACA_DAPR_PUBSUB
    api.include_router(dapr_router(kit))                # POST /events/messages: where Dapr delivers

The app then runs next to a sidecar, started for example with

    dapr run --app-id daca-kit --app-port 7860 --resources-path components -- python app.py

and each `from_settings` fails fast, with that command in its message, when no sidecar answers.

- `DaprWorkflowRuntime` registers the kit's one workflow definition (the same `chat_turn` function the
  local runtime runs) with Dapr Workflow and offers the local runtime's interface on top of
  `DaprWorkflowClient`. Review decisions are raised as workflow events (`decisions_in_store = False`).
- `DaprCounters` keeps `message_count:{user_id}` in a state store. Every write is guarded by the key's
  ETag with first-write concurrency and retried on conflict; the event ids a counter has counted
  lately live in the same value, so one ETag-guarded write both counts and marks (see the class).
- `DaprEventBus` publishes CloudEvents on `POST /v1.0/publish/{pubsub}/{topic}`; Dapr pushes them back
  to the routes of `dapr_router`, which answer with Dapr's SUCCESS / RETRY / DROP contract.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from daca_kit.clock import as_utc, utcnow
from daca_kit.errors import BackendError, BusError, ConfigError, CountersError, WorkflowError
from daca_kit.ports import Handler
from daca_kit.runtime import COMPLETED, FAILED, RUNNING, InstanceState

if TYPE_CHECKING:
    from daca_kit.settings import Settings

log = logging.getLogger(__name__)

APP_ID = "daca-kit"
DAPR_RUN = "dapr run --app-id daca-kit --app-port 7860 --resources-path components -- python app.py"
HEALTH_PATH = "/v1.0/healthz/outbound"  # ready once components load; /v1.0/healthz also waits for the app
DEFAULT_STARTUP_WAIT = 5.0
COUNT_KEY = "message_count:{}"
USERS_KEY = "message_count_users"  # outside message_count:*, so no user id can collide with it
RECENT_EVENTS = 256
SETTLED_STATUSES = ("pending_review",)


# -- the sidecar's HTTP API ---------------------------------------------------------------------
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
        headers = {"dapr-api-token": token} if token else {}
        self.client = httpx.Client(
            base_url=self.endpoint, timeout=timeout, headers=headers, transport=transport
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.BaseTransport | None = None
    ) -> DaprSidecar:
        endpoint, setting = sidecar_address(settings)
        return cls(
            endpoint, setting=setting, token=os.environ.get("DAPR_API_TOKEN") or None, transport=transport
        )

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


def _dapr_error(response: httpx.Response) -> tuple[str, str]:
    """(errorCode, message) from a Dapr error response; message cut short, never a secret we sent."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:300]
    if not isinstance(body, dict):
        return "", str(body)[:300]
    return str(body.get("errorCode") or ""), str(body.get("message") or "")[:300]


# -- counters on the state API --------------------------------------------------------------------
class DaprCounters:
    """`Counters` on a Dapr state store (Upstash Redis in the prototype), over the sidecar's HTTP API.

        counters = DaprCounters(DaprSidecar("http://127.0.0.1:3500"), store="statestore")

    `message_count:{user_id}` holds `{"count": n, "recent": [event ids]}`. The event id is recorded in
    the same value the count is, so counting and marking are one write guarded by the key's ETag
    (first-write concurrency: a stale ETag is refused with 409 and the adapter reads and tries again).
    A separate mark key would need a transaction, and on the Redis state store a transaction is a
    MULTI of scripts that does not roll back the mark when the ETag check of the count fails, which
    would lose the count. The last RECENT_EVENTS ids per user are kept: redeliveries come within
    minutes, long before a user sends 256 more messages.

    The state API cannot list keys on every store, so `message_count_users` keeps the user ids,
    also ETag-guarded; `reset()` walks it. A reset sets counts to zero and keeps each counter's recent
    ids, so an event counted before a reset and redelivered after it still counts once.
    """

    name = "dapr-state"

    def __init__(self, sidecar: DaprSidecar, store: str = "statestore", *, max_attempts: int = 50) -> None:
        self.sidecar = sidecar
        self.store = store
        self.max_attempts = max_attempts
        self.label = f"dapr-state:{store}"
        self.commands = 0
        self.conflicts = 0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, wait: float | None = None, transport: httpx.BaseTransport | None = None
    ) -> DaprCounters:
        return cls(checked_sidecar(settings, wait=wait, transport=transport), settings.dapr_statestore)

    # -- state primitives ----------------------------------------------------------------------
    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        with self._lock:
            self.commands += 1
        return self.sidecar.request(method, path, what=what, error=CountersError, **kwargs)

    def _fail(self, what: str, response: httpx.Response) -> CountersError:
        code, message = _dapr_error(response)
        if code in ("ERR_STATE_STORE_NOT_FOUND", "ERR_STATE_STORES_NOT_CONFIGURED"):
            return CountersError(
                f"Could not {what}: the Dapr sidecar has no state store named '{self.store}': check metadata.name "
                "in components/statestore.yaml and DACA_DAPR_STATESTORE, and the daprd log for why it did not load"
            )
        detail = f"{code}: {message}" if code else message or f"HTTP {response.status_code}"
        return CountersError(
            f"Could not {what}: the Dapr state store '{self.store}' failed ({detail}); check that its Redis is "
            "reachable from daprd (REDIS_HOST, REDIS_PASSWORD, REDIS_ENABLE_TLS for Upstash)"
        )

    def _key_path(self, key: str) -> str:
        return f"/v1.0/state/{quote(self.store, safe='')}/{quote(key, safe='')}"

    def _get(self, key: str, what: str) -> tuple[Any, str | None]:
        response = self._request("GET", self._key_path(key), what, params={"consistency": "strong"})
        if response.status_code == 204 or (response.status_code == 200 and not response.content):
            return None, None
        if response.status_code != 200:
            raise self._fail(what, response)
        try:
            value = response.json()
        except ValueError as exc:
            raise CountersError(
                f"Could not {what}: the state store returned a value that is not JSON for {key}"
            ) from exc
        return value, response.headers.get("etag")

    def _save(self, key: str, value: Any, etag: str | None, what: str) -> bool:
        """Writes `value` if the key still has `etag` (or, with no etag, does not exist yet).

        Returns False when another writer got there first. A refused create cannot be told apart
        from a failure by status on every store (Redis answers 500 "failed to set key"), so the key
        is read again: if it exists now, the create lost a race.
        """
        item: dict[str, Any] = {
            "key": key,
            "value": value,
            "options": {"concurrency": "first-write", "consistency": "strong"},
        }
        if etag is not None:
            item["etag"] = etag
        response = self._request("POST", f"/v1.0/state/{quote(self.store, safe='')}", what, json=[item])
        if 200 <= response.status_code < 300:
            return True
        if response.status_code == 409:
            self._conflict()
            return False
        if etag is None:
            _, now = self._get(key, what)
            if now is not None:
                self._conflict()
                return False
        raise self._fail(what, response)

    def _conflict(self) -> None:
        with self._lock:
            self.conflicts += 1

    def _retry(self, attempt: int) -> None:
        # Jittered backoff: writers that collided do not collide again in lockstep.
        time.sleep(random.uniform(0, min(0.05, 0.002 * (2**attempt))))

    def _too_busy(self, what: str, key: str) -> CountersError:
        return CountersError(
            f"Could not {what}: {key} kept changing under concurrent writers for {self.max_attempts} attempts; "
            "try again (a MessageSent event is delivered again by the broker)"
        )

    @staticmethod
    def _record(value: Any) -> tuple[int, list[str]]:
        if isinstance(value, dict):
            return int(value.get("count") or 0), [str(e) for e in value.get("recent") or []]
        if isinstance(value, int | float | str) and str(value).strip().lstrip("-").isdigit():
            return int(value), []  # a bare number written by hand or by an older version
        return 0, []

    def _register(self, user_id: str) -> None:
        """Adds `user_id` to the users key (once), so that `reset` and `all` find its counter."""
        what = "register the user's counter"
        for attempt in range(self.max_attempts):
            value, etag = self._get(USERS_KEY, what)
            users = list((value or {}).get("users") or []) if isinstance(value, dict) else []
            if user_id in users:
                return
            if self._save(USERS_KEY, {"users": [*users, user_id]}, etag, what):
                return
            self._retry(attempt)
        raise self._too_busy(what, USERS_KEY)

    def _users(self, what: str) -> list[str]:
        value, _ = self._get(USERS_KEY, what)
        return [str(u) for u in (value or {}).get("users") or []] if isinstance(value, dict) else []

    def _update(
        self, user_id: str, what: str, change: Callable[[int, list[str]], tuple[int, list[str]] | None]
    ) -> tuple[int, bool]:
        """Read-modify-write of one counter under its ETag: (count after, whether it was written).
        `change` gets (count, recent ids) and returns the new pair, or None to leave the counter."""
        key = COUNT_KEY.format(user_id)
        for attempt in range(self.max_attempts):
            value, etag = self._get(key, what)
            count, recent = self._record(value)
            changed = change(count, recent)
            if changed is None:
                return count, False
            if etag is None:
                self._register(user_id)  # before the counter exists: a crash leaves no unlisted counter
            new_count, new_recent = changed
            if self._save(key, {"count": new_count, "recent": new_recent[-RECENT_EVENTS:]}, etag, what):
                return new_count, True
            self._retry(attempt)
        raise self._too_busy(what, key)

    # -- the Counters port -----------------------------------------------------------------------
    def get(self, user_id: str) -> int:
        value, _ = self._get(COUNT_KEY.format(user_id), "read the message count")
        return self._record(value)[0]

    def set(self, user_id: str, value: int) -> None:
        self._update(user_id, "set the message count", lambda _count, recent: (int(value), recent))

    def increment_once(self, user_id: str, event_id: str) -> int:
        def count(current: int, recent: list[str]) -> tuple[int, list[str]] | None:
            if event_id in recent:
                return None  # counted before: a redelivery
            return current + 1, [*recent, event_id]

        return self._update(user_id, "count the message", count)[0]

    def reset(self) -> int:
        cleared = 0
        for user_id in self._users("reset the counters"):
            _, written = self._update(
                user_id, "reset the counters", lambda c, recent: (0, recent) if c else None
            )
            cleared += written
        return cleared

    def all(self, limit: int = 1000) -> dict[str, int]:
        users = self._users("list the counters")[:limit]
        if not users:
            return {}
        what = "list the counters"
        response = self._request(
            "POST",
            f"/v1.0/state/{quote(self.store, safe='')}/bulk",
            what,
            json={"keys": [COUNT_KEY.format(u) for u in users], "parallelism": 10},
        )
        if response.status_code != 200:
            raise self._fail(what, response)
        prefix = len(COUNT_KEY.format(""))
        counts: dict[str, int] = {}
        for item in response.json() or []:
            if item.get("key", "").startswith(COUNT_KEY.format("")) and "data" in item:
                counts[item["key"][prefix:]] = self._record(item.get("data"))[0]
        return counts

    def ping(self) -> None:
        problem = self.sidecar.probe()
        if problem is not None:
            raise CountersError(
                f"The Dapr sidecar at {self.sidecar.endpoint} is {problem} ({HEALTH_PATH}): is daprd still running?"
            )

    def close(self) -> None:
        self.sidecar.close()


# -- events on the pub/sub API ----------------------------------------------------------------------
class DaprEventBus:
    """`EventBus` on Dapr pub/sub: publish over the sidecar's HTTP API, receive at `dapr_router`'s routes.

        bus = DaprEventBus(DaprSidecar("http://127.0.0.1:3500"), pubsub="pubsub")
        bus.subscribe("messages", handler, consumer="daca-analytics")   # called by POST /events/messages

    Events are CloudEvents already (`daca_kit.workflow.cloud_event`), sent as
    `application/cloudevents+json` so Dapr forwards them as they are, id included: consumers deduplicate
    by that id. Subscriptions are declarative (components/subscription.yaml); `subscribe` only says
    which handlers run when Dapr delivers a topic's event to this app.
    """

    name = "dapr-pubsub"

    def __init__(self, sidecar: DaprSidecar, pubsub: str = "pubsub") -> None:
        self.sidecar = sidecar
        self.pubsub = pubsub
        self.label = f"dapr-pubsub:{pubsub}"
        self.published = 0
        self.delivered = 0
        self._handlers: dict[str, list[tuple[str, Handler]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, wait: float | None = None, transport: httpx.BaseTransport | None = None
    ) -> DaprEventBus:
        return cls(checked_sidecar(settings, wait=wait, transport=transport), settings.dapr_pubsub)

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        what = f"publish the {topic} event"
        # CloudEvents JSON has no null attributes: an absent `time` is left out, not sent as null.
        body = {k: v for k, v in event.items() if v is not None}
        response = self.sidecar.request(
            "POST",
            f"/v1.0/publish/{quote(self.pubsub, safe='')}/{quote(topic, safe='')}",
            what=what,
            error=BusError,
            content=json.dumps(body).encode(),
            headers={"content-type": "application/cloudevents+json"},
        )
        if 200 <= response.status_code < 300:
            with self._lock:
                self.published += 1
            return
        code, message = _dapr_error(response)
        if code in ("ERR_PUBSUB_NOT_FOUND", "ERR_PUBSUB_NOT_CONFIGURED"):
            raise BusError(
                f"Could not {what}: the Dapr sidecar has no pub/sub named '{self.pubsub}': check metadata.name in "
                "components/pubsub.yaml and DACA_DAPR_PUBSUB, and the daprd log for why it did not load"
            )
        if code == "ERR_PUBSUB_FORBIDDEN" or response.status_code == 403:
            raise BusError(
                f"Could not {what}: the pub/sub component does not let app '{APP_ID}' publish on '{topic}': "
                "check the component's scopes and publishingScopes, and --app-id"
            )
        detail = f"{code}: {message}" if code else message or f"HTTP {response.status_code}"
        raise BusError(
            f"Could not {what}: Dapr pub/sub '{self.pubsub}' failed ({detail}); check that the broker is "
            "reachable from daprd (AMQP_URL)"
        )

    def subscribe(self, topic: str, handler: Handler, *, consumer: str) -> None:
        with self._lock:
            self._handlers.setdefault(topic, []).append((consumer, handler))

    def deliver(self, topic: str, event: dict[str, Any]) -> str:
        """Runs the topic's handlers on one delivered event: "SUCCESS", or "RETRY" when one failed
        or none is subscribed yet (Dapr may deliver before the kit has started)."""
        with self._lock:
            handlers = list(self._handlers.get(topic, ()))
        if not handlers:
            log.warning(
                "no handler for %s event %s yet; asking Dapr to deliver it again", topic, event.get("id")
            )
            return "RETRY"
        for consumer, handler in handlers:
            try:
                handler(event)
            except Exception as exc:  # noqa: BLE001 - any failure means "deliver again later"
                log.warning("consumer %s failed on %s event %s: %s", consumer, topic, event.get("id"), exc)
                return "RETRY"
        with self._lock:
            self.delivered += 1
        return "SUCCESS"

    def ping(self) -> None:
        problem = self.sidecar.probe()
        if problem is not None:
            raise BusError(f"The Dapr sidecar at {self.sidecar.endpoint} is {problem} ({HEALTH_PATH})")

    def close(self) -> None:
        with self._lock:
            self._handlers.clear()
        self.sidecar.close()


def _from_dapr(request: Request) -> bool:
    """Whether a delivery comes from daprd: its APP_API_TOKEN when one is set, else this machine."""
    import hmac
    import ipaddress

    token = os.environ.get("APP_API_TOKEN")
    if token:
        return hmac.compare_digest(request.headers.get("dapr-api-token", "").encode(), token.encode())
    host = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    # A public request reaches a Space through its proxy, which adds X-Forwarded-For.
    return loopback and not request.headers.get("x-forwarded-for")


def dapr_router(kit: Any) -> APIRouter:
    """The routes Dapr pushes subscribed events to (components/subscription.yaml): POST /events/{topic}.

    Answers per Dapr's contract: {"status": "SUCCESS"} (done), "RETRY" (deliver again later) or "DROP"
    (malformed, never deliverable). Only daprd may call them: with APP_API_TOKEN set, requests must carry
    it in `dapr-api-token` (daprd sends it); without it, only requests from this machine are accepted.
    """
    from starlette.concurrency import run_in_threadpool

    router = APIRouter(tags=["dapr"], include_in_schema=False)

    @router.post("/events/{topic}")
    async def deliver(topic: str, request: Request) -> JSONResponse:
        if not _from_dapr(request):
            return JSONResponse({"detail": "Only the Dapr sidecar may deliver events."}, status_code=403)
        try:
            event = json.loads(await request.body())
        except ValueError:
            log.warning("dropping a %s delivery whose body is not JSON", topic)
            return JSONResponse({"status": "DROP"})
        if not isinstance(event, dict):
            log.warning("dropping a %s delivery that is not a CloudEvent object", topic)
            return JSONResponse({"status": "DROP"})
        bus = kit.bus
        if not callable(getattr(bus, "deliver", None)):
            log.warning("the kit's event bus (%s) does not take Dapr deliveries", getattr(bus, "label", "?"))
            return JSONResponse({"status": "RETRY"})
        status = await run_in_threadpool(bus.deliver, topic, event)
        return JSONResponse({"status": status})

    return router


# -- the workflow runtime on Dapr Workflow ----------------------------------------------------------
def _register_workflow(runtime: Any, fn: Callable[..., Any], name: str) -> None:
    """`runtime.register_workflow(fn, name=name)` for a function another runtime may have registered.

    The SDK marks the function object itself (`_workflow_registered`, `_dapr_alternate_name`) and
    refuses to register a marked function again, which would allow only one runtime per process. The
    marks guard nothing else, so they are cleared first; a different name given elsewhere is refused.
    """
    previous = fn.__dict__.get("_dapr_alternate_name")
    if previous not in (None, name):
        raise WorkflowError(
            f"Workflow {fn.__name__} is already registered with Dapr as '{previous}', not '{name}'"
        )
    fn.__dict__.pop("_workflow_registered", None)
    fn.__dict__.pop("_dapr_alternate_name", None)
    runtime.register_workflow(fn, name=name)


def _activity(fn: Callable[[Any, Any], Any], name: str) -> Callable[[Any, Any], Any]:
    """A fresh function per registration: the SDK marks what it registers, and a bound method's marks
    land on the class's function, shared by every TurnActivities."""

    def activity(ctx: Any, data: Any) -> Any:
        return fn(ctx, data)

    activity.__name__ = activity.__qualname__ = name
    return activity


def _sdk_logging() -> Any:
    """The SDK's loggers through the app's logging: by default each SDK object adds its own console
    handler (every line printed twice). The client's per-call INFO lines ("Waiting up to 0.1s ...")
    are quieted unless the app set that logger's level itself."""
    from dapr.ext.workflow.logger import LoggerOptions

    chatty = logging.getLogger("durabletask-client")
    if chatty.level == logging.NOTSET:
        chatty.setLevel(logging.WARNING)
    return LoggerOptions(log_handler=logging.NullHandler())


def _custom_status(raw: str | None) -> str | None:
    # set_custom_status("x") reaches the sidecar as x; a JSON-encoded "x" is accepted too.
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw


def instance_state(ws: Any) -> InstanceState:
    """Dapr's WorkflowState as the kit's InstanceState."""
    from dapr.ext.workflow import WorkflowStatus

    status = ws.runtime_status
    output: Any = json.loads(ws.serialized_output) if ws.serialized_output else None
    if status == WorkflowStatus.COMPLETED:
        runtime_status = COMPLETED
    elif status == WorkflowStatus.FAILED:
        runtime_status = FAILED
        details = ws.failure_details
        reason = details.message if details is not None else "no details"
        output = {"status": "failed", "reply": None, "error": f"The turn failed on Dapr Workflow: {reason}"}
    elif status == WorkflowStatus.TERMINATED:
        runtime_status = FAILED
        output = {"status": "failed", "reply": None, "error": "The turn was terminated before it finished."}
    else:  # RUNNING, PENDING, SUSPENDED, STALLED, UNKNOWN: not finished
        runtime_status = RUNNING
    created = ws.created_at if isinstance(ws.created_at, datetime) else utcnow()
    updated = ws.last_updated_at if isinstance(ws.last_updated_at, datetime) else created
    return InstanceState(
        instance_id=ws.instance_id,
        name=ws.name,
        input=json.loads(ws.serialized_input) if ws.serialized_input else {},
        runtime_status=runtime_status,
        custom_status=_custom_status(ws.serialized_custom_status),
        output=output
        if isinstance(output, dict) or output is None
        else {"status": "completed", "reply": output},
        created_at=as_utc(created),
        updated_at=as_utc(updated),
    )


class DaprWorkflowRuntime:
    """The kit's workflow runtime on Dapr Workflow, with LocalRuntime's interface.

        runtime = DaprWorkflowRuntime({"chat_turn": chat_turn}, activities.as_dict())
        runtime.start()                                   # opens the work-item stream to daprd (gRPC)
        state = runtime.schedule("chat_turn", instance_id, turn)

    `schedule` returns once the turn completed or waits for a reviewer (custom status
    `pending_review`), or after `settle_timeout` seconds with the turn still running. The gRPC address
    is the SDK's: DAPR_GRPC_ENDPOINT, or DAPR_RUNTIME_HOST:DAPR_GRPC_PORT (127.0.0.1:50001).

    Listeners (`on_change`) hear of a change when this process observes it: in `schedule`, `get`,
    `wait`, and after `raise_event` (a short-lived thread waits for the resumed turn to finish). A
    turn waiting for a reviewer costs no calls until the decision is raised.

    `client` replaces the SDK's DaprWorkflowClient (the tests pass Dapr's engine running in process);
    `start()` then opens no stream to a sidecar.
    """

    name = "dapr"
    decisions_in_store = False

    def __init__(
        self,
        workflows: Mapping[str, Callable[..., Any]],
        activities: Mapping[str, Callable[[Any, Any], Any]],
        *,
        sidecar: DaprSidecar | None = None,
        grpc_host: str | None = None,
        grpc_port: str | None = None,
        settle_timeout: float = 60.0,
        start_timeout: float = 15.0,
        watch_timeout: float = 120.0,
        client: Any = None,
    ) -> None:
        from dapr.ext.workflow import WorkflowRuntime
        from dapr.ext.workflow.util import getAddress

        self.workflows = dict(workflows)
        self.activities = dict(activities)
        self.sidecar = sidecar
        self.grpc_host, self.grpc_port = grpc_host, grpc_port
        self.grpc_address = getAddress(grpc_host, grpc_port)
        self.settle_timeout = settle_timeout
        self.start_timeout = start_timeout
        self.watch_timeout = watch_timeout
        self.workflow_runtime = WorkflowRuntime(
            host=grpc_host, port=grpc_port, logger_options=_sdk_logging(), worker_ready_timeout=start_timeout
        )
        for name, fn in self.workflows.items():
            _register_workflow(self.workflow_runtime, fn, name)
        for name, fn in self.activities.items():
            self.workflow_runtime.register_activity(_activity(fn, name), name=name)
        # A client given here (an in-process engine in tests) replaces the sidecar: start() opens nothing.
        self._given_client = client
        self._client: Any = None
        self._listeners: list[Callable[[InstanceState], None]] = []
        self._seen: OrderedDict[str, tuple[str, str | None]] = OrderedDict()
        self._seen_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="dapr-workflow-wait")
        self._started = False
        self._closing = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        workflows: Mapping[str, Callable[..., Any]],
        activities: Mapping[str, Callable[[Any, Any], Any]],
        wait: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> DaprWorkflowRuntime:
        return cls(workflows, activities, sidecar=checked_sidecar(settings, wait=wait, transport=transport))

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Checks the sidecar, then opens the worker's stream; raises ConfigError/BackendError sentences."""
        if self._started:
            return
        if self._given_client is not None:
            self._client, self._started = self._given_client, True
            return
        if self.sidecar is not None:
            require_sidecar(self.sidecar, wait=0)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self.workflow_runtime.start()
            except BaseException as exc:  # noqa: BLE001 - reported by the waiting thread below
                failure.append(exc)

        # The SDK's start() blocks until the stream is open, without a limit: bound it here.
        starter = threading.Thread(target=run, name="dapr-workflow-start", daemon=True)
        starter.start()
        starter.join(self.start_timeout + 1.0)
        if starter.is_alive() or failure:
            reason = "" if starter.is_alive() else f" ({failure[0]})"
            self.workflow_runtime.shutdown()
            starter.join(5.0)
            raise BackendError(
                f"The Dapr workflow engine at {self.grpc_address} (DAPR_GRPC_PORT) did not open a work-item stream "
                f"within {self.start_timeout:g} s{reason}: check that daprd runs with placement and scheduler "
                f'(`dapr init`, then `{DAPR_RUN}`) and that its state store has actorStateStore: "true"',
                backend="workflow",
            )
        from dapr.ext.workflow import DaprWorkflowClient

        self._client = DaprWorkflowClient(
            host=self.grpc_host, port=self.grpc_port, logger_options=_sdk_logging()
        )
        self._started = True

    def close(self) -> None:
        self._closing = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._client is not None:  # closing its channel cancels the waits still running in the pool
            self._client.close()
            self._client = None
        if self._started:
            self._started = False
            if self._given_client is None:
                self.workflow_runtime.shutdown()
        if self.sidecar is not None:
            self.sidecar.close()

    def on_change(self, listener: Callable[[InstanceState], None]) -> None:
        """Calls `listener(state)` whenever this process observes an instance change status."""
        self._listeners.append(listener)

    # -- the runtime's API ------------------------------------------------------------------------
    def schedule(self, name: str, instance_id: str, input: dict[str, Any]) -> InstanceState:
        """Starts an instance and waits until it completes, waits for a reviewer, or `settle_timeout`."""
        if name not in self.workflows:
            raise WorkflowError(f"No workflow named '{name}' is registered")
        client = self._require_client()
        self._call(
            "start the chat turn", client.schedule_new_workflow, name, input=input, instance_id=instance_id
        )
        deadline = time.monotonic() + self.settle_timeout
        step = 0.1
        state: InstanceState | None = None
        while (left := deadline - time.monotonic()) > 0:
            # Completion is a server-side long poll; a review wait shows only in the custom status.
            state = self.wait(instance_id, min(step, left))
            if state is None or state.is_terminal or state.custom_status in SETTLED_STATUSES:
                break
            step = min(step * 2, 2.0)
        return state or InstanceState(instance_id=instance_id, name=name, input=input)

    def get(self, instance_id: str) -> InstanceState | None:
        client = self._require_client()
        ws = self._call("read the chat turn", client.get_workflow_state, instance_id, fetch_payloads=True)
        return self._observe(ws)

    def raise_event(self, instance_id: str, name: str, payload: Any) -> None:
        """Raises the event on the instance; a background wait then reports the resumed turn's end."""
        client = self._require_client()
        self._call("resume the chat turn", client.raise_workflow_event, instance_id, name, data=payload)
        self.notify(instance_id)

    def notify(self, instance_id: str) -> None:
        """Watches the instance (in a thread) until it ends or `watch_timeout`, telling the listeners."""
        try:
            self._pool.submit(self._watch, instance_id)
        except RuntimeError:  # closed
            pass

    def wait(self, instance_id: str, timeout: float) -> InstanceState | None:
        """Blocks until the instance ends or `timeout` seconds pass; returns its latest state."""
        if timeout <= 0:  # the SDK reads a zero timeout as "wait forever"
            return self.get(instance_id)
        client = self._require_client()
        try:
            ws = self._call(
                "wait for the chat turn",
                client.wait_for_workflow_completion,
                instance_id,
                fetch_payloads=True,
                timeout_in_seconds=timeout,
            )
        except TimeoutError:
            return self.get(instance_id)
        return self._observe(ws)

    async def wait_async(self, instance_id: str, timeout: float) -> InstanceState | None:
        """`wait` on one of the runtime's threads, so the event loop is free meanwhile."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.wait, instance_id, timeout)

    # -- internals -------------------------------------------------------------------------------
    def _require_client(self) -> Any:
        if self._client is None:
            raise WorkflowError("The Dapr workflow runtime is not started: call start() (Kit.start() does)")
        return self._client

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        import grpc

        try:
            return fn(*args, **kwargs)
        except grpc.RpcError as exc:
            code = exc.code() if callable(getattr(exc, "code", None)) else None
            details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
            if details and "no such instance exists" in details:
                return None
            raise BackendError(
                f"Could not {what}: the Dapr workflow API at {self.grpc_address} (DAPR_GRPC_PORT) answered "
                f"{getattr(code, 'name', code)}: {details}; is daprd still running?",
                backend="workflow",
            ) from exc

    def _watch(self, instance_id: str) -> None:
        try:
            self.wait(instance_id, self.watch_timeout)
        except Exception:  # noqa: BLE001 - a background watch must never die silently
            if not self._closing:
                log.exception("watching workflow %s failed", instance_id)

    def _observe(self, ws: Any) -> InstanceState | None:
        if ws is None:
            return None
        state = instance_state(ws)
        key = (state.runtime_status, state.custom_status)
        with self._seen_lock:
            if self._seen.get(state.instance_id) == key:
                return state
            self._seen[state.instance_id] = key
            self._seen.move_to_end(state.instance_id)
            while len(self._seen) > 10_000:
                self._seen.popitem(last=False)
        for listener in self._listeners:
            try:
                listener(state)
            except Exception:  # noqa: BLE001 - a listener must not break the runtime
                log.exception("workflow listener failed")
        return state

"""The event bus on Dapr pub/sub (`DACA_RUNTIME=dapr`): publish over the sidecar's HTTP API; Dapr pushes
subscribed events back to the app (`POST /events/{topic}`, in `daca_kit.web.api.events`).

    bus = DaprEventBus.from_settings(settings)          # pub/sub API, component DACA_DAPR_PUBSUB
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from daca_kit.adapters.dapr.sidecar import APP_ID, HEALTH_PATH, DaprSidecar, checked_sidecar, dapr_error
from daca_kit.core.models import Backend
from daca_kit.core.ports import Handler
from daca_kit.errors import BusError

if TYPE_CHECKING:
    from daca_kit.settings import Settings

log = logging.getLogger(__name__)


class DaprEventBus:
    """`EventBus` on Dapr pub/sub: publish over the sidecar's HTTP API, receive at `dapr_router`'s routes.

        bus = DaprEventBus(DaprSidecar("http://127.0.0.1:3500"), pubsub="pubsub")
        bus.subscribe("messages", handler, consumer="daca-analytics")   # called by POST /events/messages

    Events are CloudEvents already (`daca_kit.core.workflow.cloud_event`), sent as
    `application/cloudevents+json` so Dapr forwards them as they are, id included: consumers deduplicate
    by that id. Subscriptions are declarative (components/subscription.yaml); `subscribe` only says
    which handlers run when Dapr delivers a topic's event to this app.
    """

    name = "dapr-pubsub"

    def __init__(self, sidecar: DaprSidecar, pubsub: str = "pubsub") -> None:
        self.sidecar = sidecar
        self.pubsub = pubsub
        self.backend = Backend("dapr-pubsub", f"dapr-pubsub:{pubsub}", "Dapr pub/sub")
        self.published = 0
        self.delivered = 0
        self._handlers: dict[str, list[tuple[str, Handler]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, wait: float | None = None, transport: httpx.BaseTransport | None = None
    ) -> DaprEventBus:
        return cls(checked_sidecar(settings, wait=wait, transport=transport), settings.dapr_pubsub)

    @property
    def calls(self) -> int:
        return self.published

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
        code, message = dapr_error(response)
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

    def subscribe(self, topic: str, handler: Handler, *, consumer: str, consume: bool = True) -> None:
        if not consume:
            return  # Dapr's subscriptions are declared in components/, not here
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

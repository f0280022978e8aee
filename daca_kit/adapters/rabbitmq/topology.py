"""RabbitMQ's addresses and topology for the bus: URLs, a topic's exchange and queues, and pika's
failures translated into sentences that name AMQP_URL.

    declare_topic(channel, "messages", ["daca-analytics-messages"])
    raise explain_amqp_error(exc, url) from exc
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions

from daca_kit.adapters.network import chain_text, first_line, looks_tls, unreachable, url_secrets
from daca_kit.errors import AUTH, ERROR, MISSING, TLS, BusError


def amqp_address(url: str) -> tuple[str, int, str]:
    """(host, port, vhost) of an AMQP URL, with the default port of its scheme."""
    parts = urlsplit(url)
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return parts.hostname or "localhost", port, vhost


def describe_amqp_url(url: str) -> str:
    host, port, _vhost = amqp_address(url)
    parts = urlsplit(url)
    return f"{parts.scheme}://{host}:{port}{parts.path or '/'}"


def declare_topic(channel: Any, topic: str, queues: Iterable[str] = ()) -> None:
    """Declares the topic's durable fanout exchange, and each queue (durable, classic) bound to it.

    Publisher and consumers declare the same way, so either may (re)create what the other expects.
    """
    channel.exchange_declare(exchange=topic, exchange_type="fanout", durable=True)
    for queue in queues:
        channel.queue_declare(queue=queue, durable=True, arguments={"x-queue-type": "classic"})
        channel.queue_bind(queue=queue, exchange=topic)


def explain_amqp_error(exc: BaseException, url: str, *, connecting: bool = False) -> BusError:
    """The BusError for a pika failure: a sentence naming the setting to fix, and its `problem`.

    `connecting`: the failure came while opening the connection, which over amqps:// is the TLS handshake.
    """
    host, port, vhost = amqp_address(url)
    where = f"RabbitMQ at {host}:{port}"
    text = chain_text(exc)
    auth_errors = (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError)
    if isinstance(exc, auth_errors) or "access_refused" in text:
        return BusError(f"{where} refused the user name or password: check them in AMQP_URL.", problem=AUTH)
    if isinstance(exc, pika.exceptions.ProbableAccessDeniedError) or "not_allowed" in text:
        return BusError(
            f"{where} refused the virtual host '{vhost}': it does not exist or the user may not use it; "
            "check the vhost at the end of AMQP_URL (CloudAMQP's vhost is the user name).",
            problem=MISSING,
        )
    found = unreachable(exc, host, port, setting="AMQP_URL", what="the RabbitMQ broker", error=BusError)
    if found is not None:
        return found
    # A connection over amqps:// that fails without a word is most likely TLS spoken to a plain port
    # (a timeout is more likely a firewall: that one stays unclassified).
    timed_out = "timed out" in text or "timeout" in text
    if looks_tls(text) or (connecting and url.lower().startswith("amqps") and not timed_out):
        return BusError(
            f"The TLS handshake with {where} failed: amqps:// needs the broker's TLS port (5671 on CloudAMQP), "
            "amqp:// the plain one (5672); check AMQP_URL.",
            problem=TLS,
        )
    return BusError(
        f"{where} failed ({type(exc).__name__}: {first_line(exc, url_secrets(url))}): check AMQP_URL.",
        problem=ERROR,
    )

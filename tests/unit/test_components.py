"""Every Dapr resource in components/ uses only fields the Dapr specs define, and holds no secret.

Dapr does not reject a metadata name it does not know: it ignores it, so a misspelt or invented field
(`reconnectWait`, `deleted`) is a setting that silently never took effect. The allowed-field lists below
are therefore kept here, each with the spec page it comes from, and the same checker is shown to reject
resources that break them.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ROOT / "components"
APP_ID = "daca-kit"

# --- Allowed fields ----------------------------------------------------------------------------------

# Component: https://docs.dapr.io/reference/resource-specs/component-schema/
# (Go type: dapr/dapr pkg/apis/components/v1alpha1/types.go)
COMPONENT_KEYS = {"apiVersion", "kind", "metadata", "spec", "auth", "scopes"}
OBJECT_METADATA_KEYS = {"name", "namespace"}
COMPONENT_SPEC_KEYS = {"type", "version", "metadata", "initTimeout", "ignoreErrors"}
METADATA_ITEM_KEYS = {"name", "value", "secretKeyRef"}
SECRET_KEY_REF_KEYS = {"name", "key"}
# https://docs.dapr.io/operations/components/component-secrets/ (`auth.secretStore`)
AUTH_KEYS = {"secretStore"}

# Metadata names per component type, with the versions the type has.
COMPONENT_TYPES: dict[str, tuple[set[str], set[str]]] = {
    # https://docs.dapr.io/reference/components-reference/supported-pubsub/setup-rabbitmq/ and
    # dapr/components-contrib pubsub/rabbitmq/metadata.yaml + metadata.go (the names the code reads).
    # Left out on purpose: `host` (deprecated alias of connectionString), `reconnectWait` (shown in the
    # docs' example, but the component reads `reconnectWaitSeconds`), `deleted` (never existed).
    "pubsub.rabbitmq": (
        {"v1"},
        {
            "connectionString", "protocol", "hostname", "username", "password", "consumerID",
            "durable", "deletedWhenUnused", "autoAck", "deliveryMode", "requeueInFailure",
            "prefetchCount", "reconnectWaitSeconds", "concurrencyMode", "publisherConfirm",
            "enableDeadLetter", "maxLen", "maxLenBytes", "exchangeKind", "saslExternal",
            "ttlInSeconds", "caCert", "clientCert", "clientKey", "clientName", "heartBeat",
        },
    ),
    # https://docs.dapr.io/reference/components-reference/supported-state-stores/setup-redis/ and
    # dapr/components-contrib state/redis/metadata.yaml; `actorStateStore` from
    # https://docs.dapr.io/developing-applications/building-blocks/state-management/state-management-overview/
    # and `keyPrefix` from .../state-management/howto-share-state/ (both common to state stores).
    "state.redis": (
        {"v1"},
        {
            "redisHost", "redisPassword", "redisUsername", "useEntraID", "enableTLS", "clientCert",
            "clientKey", "maxRetries", "maxRetryBackoff", "failover", "sentinelMasterName",
            "redeliverInterval", "processingTimeout", "redisType", "redisDB", "redisMaxRetries",
            "redisMinRetryInterval", "redisMaxRetryInterval", "dialTimeout", "readTimeout",
            "writeTimeout", "poolSize", "poolTimeout", "maxConnAge", "minIdleConns",
            "idleCheckFrequency", "idleTimeout", "ttlInSeconds", "queryIndexes",
            "actorStateStore", "keyPrefix",
        },
    ),
    # https://docs.dapr.io/reference/components-reference/supported-secret-stores/envvar-secret-store/
    "secretstores.local.env": ({"v1"}, {"prefix"}),
}  # fmt: skip

# Subscription: https://docs.dapr.io/reference/resource-specs/subscription-schema/
# (Go type: dapr/dapr pkg/apis/subscriptions/v2alpha1/types.go). v1alpha1 is deprecated but valid.
SUBSCRIPTION_KEYS = {"apiVersion", "kind", "metadata", "spec", "scopes"}
SUBSCRIPTION_SPEC_KEYS = {
    "dapr.io/v2alpha1": {"pubsubname", "topic", "routes", "metadata", "deadLetterTopic", "bulkSubscribe"},
    "dapr.io/v1alpha1": {"pubsubname", "topic", "route", "metadata", "deadLetterTopic", "bulkSubscribe"},
}
ROUTES_KEYS = {"rules", "default"}
RULE_KEYS = {"match", "path"}
BULK_SUBSCRIBE_KEYS = {"enabled", "maxMessagesCount", "maxAwaitDurationMs"}

# Configuration: https://docs.dapr.io/reference/resource-specs/configuration-schema/ (no `scopes`)
# (Go type: dapr/dapr pkg/apis/configuration/v1alpha1/types.go, which also has `metric` and `mtls`).
CONFIGURATION_KEYS = {"apiVersion", "kind", "metadata", "spec"}
CONFIGURATION_SPEC_KEYS = {
    "accessControl", "api", "httpPipeline", "appHttpPipeline", "components", "features", "logging",
    "metrics", "metric", "nameResolution", "secrets", "tracing", "mtls",
}  # fmt: skip
# https://docs.dapr.io/operations/observability/tracing/setup-tracing/
TRACING_KEYS = {"samplingRate", "stdout", "otel", "zipkin"}
OTEL_KEYS = {"endpointAddress", "isSecure", "protocol"}
ZIPKIN_KEYS = {"endpointAddress"}

# Resiliency: https://docs.dapr.io/reference/resource-specs/resiliency-schema/ and
# https://docs.dapr.io/operations/resiliency/ (policies/retries, circuit-breakers, targets)
# (Go type: dapr/dapr pkg/apis/resiliency/v1alpha1/types.go).
RESILIENCY_KEYS = {"apiVersion", "kind", "metadata", "spec", "scopes"}
RESILIENCY_SPEC_KEYS = {"policies", "targets"}
POLICIES_KEYS = {"timeouts", "retries", "circuitBreakers"}
RETRY_KEYS = {"policy", "duration", "maxInterval", "maxRetries", "matching"}
RETRY_MATCHING_KEYS = {"httpStatusCodes", "gRPCStatusCodes"}
CIRCUIT_BREAKER_KEYS = {"maxRequests", "interval", "timeout", "trip"}
TARGETS_KEYS = {"apps", "actors", "components"}
COMPONENT_TARGET_KEYS = {"inbound", "outbound"}
POLICY_REF_KEYS = {"timeout", "retry", "circuitBreaker"}
APP_TARGET_KEYS = POLICY_REF_KEYS | {"circuitBreakerCacheSize"}
ACTOR_TARGET_KEYS = POLICY_REF_KEYS | {"circuitBreakerScope", "circuitBreakerCacheSize"}

API_VERSIONS = {
    "Component": {"dapr.io/v1alpha1"},
    "Subscription": set(SUBSCRIPTION_SPEC_KEYS),
    "Configuration": {"dapr.io/v1alpha1"},
    "Resiliency": {"dapr.io/v1alpha1"},
}

# A metadata name that holds a credential (connectionString carries the broker password). Such a value
# must come from the secret store, never be written in the file.
SECRET_NAME = re.compile(r"password|secret|token|credential|connectionstring|[a-z]key$|^key$", re.IGNORECASE)
# user:password@ inside any URL-looking literal.
CREDENTIAL_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)
HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$")

# --- The checker ---------------------------------------------------------------------------------------


def unknown(where: str, node: Any, allowed: set[str]) -> list[str]:
    """Problems for a node that is not a mapping, or has keys the spec does not define."""
    if not isinstance(node, dict):
        return [f"{where}: expected a mapping, got {type(node).__name__}"]
    return [
        f"{where}: unknown field {key!r} (the spec defines {sorted(allowed)})"
        for key in node
        if key not in allowed
    ]


def scopes_problems(doc: dict[str, Any]) -> list[str]:
    scopes = doc.get("scopes")
    if not isinstance(scopes, list) or APP_ID not in scopes:
        return [f"scopes: must be a list naming {APP_ID!r}, so no other app ID can load this resource"]
    return []


def component_problems(doc: dict[str, Any]) -> list[str]:
    found = unknown("Component", doc, COMPONENT_KEYS) + scopes_problems(doc)
    spec = doc.get("spec", {})
    found += unknown("spec", spec, COMPONENT_SPEC_KEYS)
    if not isinstance(spec, dict):
        return found
    kind = spec.get("type")
    if kind not in COMPONENT_TYPES:
        return [*found, f"spec.type: unknown component type {kind!r} (known: {sorted(COMPONENT_TYPES)})"]
    versions, names = COMPONENT_TYPES[kind]
    if spec.get("version") not in versions:
        found.append(f"spec.version: {kind} has versions {sorted(versions)}, not {spec.get('version')!r}")
    items = spec.get("metadata") or []
    if not isinstance(items, list):
        return [*found, "spec.metadata: expected a list of {name, value | secretKeyRef}"]
    seen: set[str] = set()
    uses_refs = False
    for item in items:
        found += unknown("spec.metadata[]", item, METADATA_ITEM_KEYS)
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        where = f"spec.metadata {name!r}"
        if name not in names:
            found.append(f"{where}: not a field of {kind}")
        if name in seen:
            found.append(f"{where}: given twice")
        seen.add(str(name))
        if ("value" in item) == ("secretKeyRef" in item):
            found.append(f"{where}: needs exactly one of value or secretKeyRef")
        if "secretKeyRef" in item:
            uses_refs = True
            ref = item["secretKeyRef"]
            found += unknown(f"{where}.secretKeyRef", ref, SECRET_KEY_REF_KEYS)
            if not isinstance(ref, dict) or not ref.get("name") or not ref.get("key"):
                found.append(f"{where}.secretKeyRef: needs both name and key")
        elif "value" in item:
            value = item["value"]
            if not isinstance(value, str):
                found.append(
                    f'{where}: write the value quoted ({value!r} -> "{value}"); metadata values are strings'
                )
            if SECRET_NAME.search(str(name)):
                found.append(
                    f"{where}: a credential written in the file; use secretKeyRef to the secret store"
                )
            if CREDENTIAL_URL.search(str(value)):
                found.append(f"{where}: a URL with user:password in it; use secretKeyRef to the secret store")
    if uses_refs:
        auth = doc.get("auth")
        found += unknown("auth", auth if auth is not None else {}, AUTH_KEYS)
        if not isinstance(auth, dict) or not auth.get("secretStore"):
            found.append("auth.secretStore: secretKeyRef needs the name of the secret store to look in")
    return found


def subscription_problems(doc: dict[str, Any]) -> list[str]:
    found = unknown("Subscription", doc, SUBSCRIPTION_KEYS) + scopes_problems(doc)
    allowed = SUBSCRIPTION_SPEC_KEYS.get(doc.get("apiVersion", ""), set())
    spec = doc.get("spec", {})
    found += unknown("spec", spec, allowed)
    if not isinstance(spec, dict):
        return found
    if "routes" in spec:
        routes = spec["routes"]
        found += unknown("spec.routes", routes, ROUTES_KEYS)
        for rule in routes.get("rules", []) if isinstance(routes, dict) else []:
            found += unknown("spec.routes.rules[]", rule, RULE_KEYS)
    if "bulkSubscribe" in spec:
        found += unknown("spec.bulkSubscribe", spec["bulkSubscribe"], BULK_SUBSCRIBE_KEYS)
    for required in ("pubsubname", "topic"):
        if not spec.get(required):
            found.append(f"spec.{required}: required")
    return found


def configuration_problems(doc: dict[str, Any]) -> list[str]:
    found = unknown("Configuration", doc, CONFIGURATION_KEYS)
    spec = doc.get("spec", {})
    found += unknown("spec", spec, CONFIGURATION_SPEC_KEYS)
    tracing = spec.get("tracing") if isinstance(spec, dict) else None
    if tracing is not None:
        found += unknown("spec.tracing", tracing, TRACING_KEYS)
        if isinstance(tracing, dict):
            if "otel" in tracing:
                found += unknown("spec.tracing.otel", tracing["otel"], OTEL_KEYS)
            if "zipkin" in tracing:
                found += unknown("spec.tracing.zipkin", tracing["zipkin"], ZIPKIN_KEYS)
            rate = tracing.get("samplingRate")
            if rate is not None and not (isinstance(rate, str) and 0 <= float(rate) <= 1):
                found.append(f"spec.tracing.samplingRate: a quoted number from 0 to 1, not {rate!r}")
    return found


def resiliency_problems(doc: dict[str, Any]) -> list[str]:
    found = unknown("Resiliency", doc, RESILIENCY_KEYS) + scopes_problems(doc)
    spec = doc.get("spec", {})
    found += unknown("spec", spec, RESILIENCY_SPEC_KEYS)
    if not isinstance(spec, dict):
        return found
    policies = spec.get("policies", {})
    found += unknown("spec.policies", policies, POLICIES_KEYS)
    policies = policies if isinstance(policies, dict) else {}
    for name, retry in (policies.get("retries") or {}).items():
        found += unknown(f"spec.policies.retries.{name}", retry, RETRY_KEYS)
        if isinstance(retry, dict) and "matching" in retry:
            found += unknown(f"spec.policies.retries.{name}.matching", retry["matching"], RETRY_MATCHING_KEYS)
    for name, breaker in (policies.get("circuitBreakers") or {}).items():
        found += unknown(f"spec.policies.circuitBreakers.{name}", breaker, CIRCUIT_BREAKER_KEYS)
    defined = {
        "timeout": set(policies.get("timeouts") or {}),
        "retry": set(policies.get("retries") or {}),
        "circuitBreaker": set(policies.get("circuitBreakers") or {}),
    }

    def refs(where: str, target: Any, allowed: set[str]) -> list[str]:
        out = unknown(where, target, allowed)
        for kind, names in defined.items():
            if isinstance(target, dict) and kind in target and target[kind] not in names:
                out.append(f"{where}.{kind}: no {kind} policy named {target[kind]!r}")
        return out

    targets = spec.get("targets", {})
    found += unknown("spec.targets", targets, TARGETS_KEYS)
    targets = targets if isinstance(targets, dict) else {}
    for name, target in (targets.get("apps") or {}).items():
        found += refs(f"spec.targets.apps.{name}", target, APP_TARGET_KEYS)
    for name, target in (targets.get("actors") or {}).items():
        found += refs(f"spec.targets.actors.{name}", target, ACTOR_TARGET_KEYS)
    for name, target in (targets.get("components") or {}).items():
        found += unknown(f"spec.targets.components.{name}", target, COMPONENT_TARGET_KEYS)
        for direction in ("inbound", "outbound"):
            if isinstance(target, dict) and direction in target:
                found += refs(
                    f"spec.targets.components.{name}.{direction}", target[direction], POLICY_REF_KEYS
                )
    return found


CHECKS = {
    "Component": component_problems,
    "Subscription": subscription_problems,
    "Configuration": configuration_problems,
    "Resiliency": resiliency_problems,
}


def problems(doc: Any) -> list[str]:
    """Every way `doc` departs from the Dapr spec (empty when it follows it)."""
    if not isinstance(doc, dict):
        return [f"expected a mapping, got {type(doc).__name__}"]
    kind = doc.get("kind")
    if kind not in CHECKS:
        return [f"kind: unknown resource kind {kind!r} (known: {sorted(CHECKS)})"]
    found: list[str] = []
    if doc.get("apiVersion") not in API_VERSIONS[kind]:
        found.append(f"apiVersion: {kind} uses {sorted(API_VERSIONS[kind])}, not {doc.get('apiVersion')!r}")
    meta = doc.get("metadata")
    found += unknown("metadata", meta, OBJECT_METADATA_KEYS)
    if not isinstance(meta, dict) or not meta.get("name"):
        found.append("metadata.name: required")
    return found + CHECKS[kind](doc)


# --- What this prototype needs on top of the spec ---------------------------------------------------------


def metadata_values(doc: dict[str, Any]) -> dict[str, Any]:
    """name -> literal value, or the secretKeyRef mapping."""
    items = doc.get("spec", {}).get("metadata") or []
    return {item["name"]: item.get("value", item.get("secretKeyRef")) for item in items}


def rabbitmq_problems(doc: dict[str, Any]) -> list[str]:
    values = metadata_values(doc)
    found = [
        f"{name} must be {want!r}, not {values.get(name)!r}"
        for name, want in {
            "durable": "true",
            "deletedWhenUnused": "false",
            "publisherConfirm": "true",
        }.items()
        if values.get(name) != want
    ]
    prefetch = values.get("prefetchCount")
    # 0 means "no limit"; CloudAMQP caps unacknowledged messages, so stay well below 1000.
    if not (isinstance(prefetch, str) and prefetch.isdigit() and 0 < int(prefetch) < 1000):
        found.append(f"prefetchCount must be set, between 1 and 999, not {prefetch!r}")
    if not isinstance(values.get("connectionString"), dict):
        found.append("connectionString must be a secretKeyRef (it carries the broker password)")
    return found


def redis_problems(doc: dict[str, Any]) -> list[str]:
    values = metadata_values(doc)
    found = []
    if values.get("actorStateStore") != "true":
        found.append(
            f"actorStateStore must be 'true' (Dapr Workflow needs it), not {values.get('actorStateStore')!r}"
        )
    host = values.get("redisHost")
    # A reference is resolved at run time: docker/supervise.py derives REDIS_HOST as host:port.
    if not isinstance(host, dict) and not (isinstance(host, str) and HOST_PORT.match(host)):
        found.append(f"redisHost must be host:port (not a URL) or a secretKeyRef, not {host!r}")
    return found


def load(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as fh:
        return list(yaml.safe_load_all(fh))


def resources() -> dict[str, dict[str, Any]]:
    """file name -> its single resource."""
    out = {}
    for path in sorted(COMPONENTS.glob("*.yaml")):
        docs = load(path)
        assert len(docs) == 1, f"{path.name}: one resource per file, found {len(docs)}"
        out[path.name] = docs[0]
    return out


def by_name(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in resources().values() if doc.get("kind") == kind}


def load_supervisor() -> Any:
    """docker/supervise.py as a module (it is a script, not part of the package)."""
    name = "daca_supervise"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "docker" / "supervise.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# --- Tests --------------------------------------------------------------------------------------------


def test_the_stack_has_its_six_resources() -> None:
    names = {path.name for path in COMPONENTS.glob("*.y*ml")}
    assert names == {
        "pubsub.yaml",
        "statestore.yaml",
        "secretstore.yaml",
        "subscription.yaml",
        "config.yaml",
        "resiliency.yaml",
    }


@pytest.mark.parametrize("name", sorted(p.name for p in COMPONENTS.glob("*.yaml")))
def test_resource_uses_only_fields_the_spec_defines(name: str) -> None:
    (doc,) = load(COMPONENTS / name)
    assert problems(doc) == []


def test_components_are_the_names_the_app_uses() -> None:
    components = by_name("Component")
    assert components["pubsub"]["spec"]["type"] == "pubsub.rabbitmq"
    assert components["statestore"]["spec"]["type"] == "state.redis"
    assert components["secretstore"]["spec"]["type"] == "secretstores.local.env"


def test_rabbitmq_is_durable_confirmed_and_bounded() -> None:
    assert rabbitmq_problems(by_name("Component")["pubsub"]) == []


def test_redis_is_the_actor_store_and_dialled_as_host_port() -> None:
    assert redis_problems(by_name("Component")["statestore"]) == []


def test_subscription_delivers_messages_to_the_analytics_route() -> None:
    (sub,) = by_name("Subscription").values()
    spec = sub["spec"]
    assert (spec["pubsubname"], spec["topic"]) == ("pubsub", "messages")
    route = spec["routes"]["default"] if sub["apiVersion"] == "dapr.io/v2alpha1" else spec["route"]
    assert route == "/events/messages"
    assert sub["scopes"] == [APP_ID]


def test_secret_references_point_at_the_env_secret_store() -> None:
    components = by_name("Component")
    stores = {name for name, doc in components.items() if doc["spec"]["type"].startswith("secretstores.")}
    for name, doc in components.items():
        if any(isinstance(v, dict) for v in metadata_values(doc).values()):
            assert doc["auth"]["secretStore"] in stores, name


def test_every_secret_reference_is_a_variable_the_supervisor_gives_daprd() -> None:
    supervise = load_supervisor()
    env = supervise.sidecar_env(
        {
            "PATH": "/usr/bin",
            "REDIS_URL": "rediss://default:pw@example.upstash.io:6379",
            "AMQP_URL": "amqps://u:p@h/v",
        }
    )
    for name, doc in by_name("Component").items():
        for field, value in metadata_values(doc).items():
            if isinstance(value, dict):
                assert value["name"] in env, (
                    f"{name}.{field} reads {value['name']}, which daprd would not have"
                )
                assert value["key"] == value["name"], "the env secret store keys a secret by its own name"


def test_resiliency_targets_exist() -> None:
    (res,) = by_name("Resiliency").values()
    components = set(by_name("Component"))
    assert set(res["spec"]["targets"]["components"]) <= components
    assert set(res["spec"]["targets"].get("apps", {})) <= {APP_ID}


def test_configuration_tracing_is_on() -> None:
    (config,) = by_name("Configuration").values()
    assert float(config["spec"]["tracing"]["samplingRate"]) > 0


# --- The checker fails when it should -----------------------------------------------------------------


def broken(name: str, change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(load(COMPONENTS / name)[0])
    change(doc)
    return doc


def add_metadata(name: str, value: Any) -> Any:
    return lambda doc: doc["spec"]["metadata"].append({"name": name, "value": value})


def set_metadata(name: str, value: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        for item in doc["spec"]["metadata"]:
            if item["name"] == name:
                item.pop("secretKeyRef", None)
                item["value"] = value

    return change


@pytest.mark.parametrize(
    ("name", "change", "expected"),
    [
        ("pubsub.yaml", add_metadata("host", "amqp://localhost:5672"), "'host': not a field"),
        ("pubsub.yaml", add_metadata("reconnectWait", "5"), "'reconnectWait': not a field"),
        ("pubsub.yaml", add_metadata("deleted", "false"), "'deleted': not a field"),
        ("pubsub.yaml", set_metadata("connectionString", "amqps://u:secret@x.cloudamqp.com/v"), "credential"),
        ("pubsub.yaml", set_metadata("durable", True), "quoted"),
        ("statestore.yaml", set_metadata("redisPassword", "hunter2"), "credential"),
        ("statestore.yaml", lambda d: d["spec"].update(type="state.redis.cluster"), "unknown component type"),
        ("statestore.yaml", lambda d: d["spec"].update(version="v2"), "spec.version"),
        ("statestore.yaml", lambda d: d.pop("auth"), "auth.secretStore"),
        ("secretstore.yaml", lambda d: d.pop("scopes"), "scopes"),
        ("subscription.yaml", lambda d: d["spec"].update(deadLetter="dead"), "'deadLetter'"),
        ("subscription.yaml", lambda d: d.update(apiVersion="dapr.io/v3"), "apiVersion"),
        ("config.yaml", lambda d: d.update(scopes=[APP_ID]), "'scopes'"),
        ("config.yaml", lambda d: d["spec"]["tracing"].update(samplingRate=1), "samplingRate"),
        ("resiliency.yaml", lambda d: d["spec"]["policies"]["retries"]["quick"].update(maxAttempts=3), "'maxAttempts'"),
        ("resiliency.yaml", lambda d: d["spec"]["targets"]["components"]["pubsub"]["outbound"].update(retry="nope"), "no retry policy"),
    ],
)  # fmt: skip
def test_checker_rejects_fields_the_spec_does_not_define(name: str, change: Any, expected: str) -> None:
    found = problems(broken(name, change))
    assert any(expected in problem for problem in found), found


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (set_metadata("durable", "false"), "durable"),
        (set_metadata("deletedWhenUnused", "true"), "deletedWhenUnused"),
        (set_metadata("publisherConfirm", "false"), "publisherConfirm"),
        (set_metadata("prefetchCount", "0"), "prefetchCount"),
        (set_metadata("prefetchCount", "1000"), "prefetchCount"),
        (lambda d: d["spec"].update(metadata=[m for m in d["spec"]["metadata"] if m["name"] != "prefetchCount"]), "prefetchCount"),
    ],
)  # fmt: skip
def test_rabbitmq_check_rejects_unsafe_settings(change: Any, expected: str) -> None:
    assert any(expected in p for p in rabbitmq_problems(broken("pubsub.yaml", change)))


@pytest.mark.parametrize(
    "host",
    ["https://example.upstash.io", "rediss://default:pw@example.upstash.io:6379", "example.upstash.io"],
)
def test_redis_check_rejects_a_url_as_redis_host(host: str) -> None:
    assert any(
        "redisHost" in p for p in redis_problems(broken("statestore.yaml", set_metadata("redisHost", host)))
    )


def test_redis_check_accepts_host_port() -> None:
    assert redis_problems(broken("statestore.yaml", set_metadata("redisHost", "localhost:6379"))) == []


def test_redis_check_rejects_a_store_that_is_not_the_actor_store() -> None:
    assert any(
        "actorStateStore" in p
        for p in redis_problems(broken("statestore.yaml", set_metadata("actorStateStore", "false")))
    )

"""The Dapr adapters (`DACA_RUNTIME=dapr`): workflows, counters and events through a Dapr sidecar.

    runtime = DaprWorkflowRuntime.from_settings(settings, workflows=..., activities=...)   # workflow.py
    counters = DaprCounters.from_settings(settings)     # state.py: state API, DACA_DAPR_STATESTORE
    bus = DaprEventBus.from_settings(settings)          # pubsub.py: pub/sub API, DACA_DAPR_PUBSUB
    sidecar = checked_sidecar(settings)                 # sidecar.py: the sidecar's HTTP API

Each `from_settings` fails fast, with the `dapr run` command in its message, when no sidecar answers.
Dapr pushes subscribed events to the app's `POST /events/{topic}` (`daca_kit.web.api.events`).
"""

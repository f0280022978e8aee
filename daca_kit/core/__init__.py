"""The kit's heart, free of any technology: what a chat turn is and how it runs, against small ports.

`ports` declares the interfaces (one store per aggregate, counters, the event bus, the reply model, the
workflow runtime) and `models` the records that cross them; `workflow` is the chat turn, written once in
Dapr Workflow style, and `activities` its I/O; `kit` is the service layer every face calls, and
`streaming` runs a turn whose reply reaches its caller piece by piece; `outbox`,
`analytics`, `ratelimit`, `usage`, `health` (what /health reports), `validation` and `clock` are its
helpers. Core imports only the
standard library, `daca_kit.settings` and `daca_kit.errors`: no database, broker, web or UI library, and
no other layer. Adapters implement its ports; `daca_kit.bootstrap` wires them.
"""

"""One module (or small package) per technology, each implementing ports of `daca_kit.core`.

sql/ (SQLite, Postgres, CockroachDB: one module per aggregate), local_runtime/ (the kit's durable workflow
engine on the SQL store), redis and upstash (counters and shared rate limits), redis_pubsub (wake-ups
between the processes of one app), rabbitmq and inprocess (event buses; inprocess also carries reply pieces
to streaming requests, and is the one-process wake-ups), gemini (with gemini_stream, which reads a streamed
reply) and offline (reply models), dapr/ (sidecar client, state, pub/sub, workflow),
network (the TCP reach pre-check and its sentences, shared by the real services' `check()`), outbound
(which of the configured services' ports open from here, and the fallback for each that does not: the
app checks once at start for /health, doctor prints the same).
Adapters import core, `daca_kit.settings` and `daca_kit.errors`, and translate their library's
exceptions into the kit's at the boundary; they never import web, ops or bootstrap.
"""

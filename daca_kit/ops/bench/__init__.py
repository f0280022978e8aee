"""`daca-kit bench`: measures the app over HTTP on loopback, next to a raw-stack reference.

    daca-kit bench                                   # all scenarios, 32 users, results in build/bench/
    daca-kit bench --scenarios embedded --users 8 --turns 200
    daca-kit bench --url http://127.0.0.1:7860 --users 4 --turns 100   # a running app

The kit is started as users start it (`daca-kit serve --api-only`, through `daca_kit.ops.launcher`) and
measured only from outside: latency and throughput at the client, backend calls per turn (SQL
statements, Redis commands, AMQP publishes, model calls) from the app's own `GET /usage`, memory (VmRSS)
and CPU time from /proc. The reply model is the offline one, optionally slowed by --model-delay seconds
per call (the app's DACA_OFFLINE_DELAY) to emulate a remote model. Results go to
`<out>/bench-<time>.json`, `<out>/bench.json` and `<out>/bench.png`; the servers' output to
`<out>/kit-server.log` and `<out>/raw-server.log`.

    load.py       the load generator, percentiles, backend calls from GET /usage
    raw.py        the raw-stack reference server (one SELECT, INSERT, Redis INCR, confirmed publish)
    scenarios.py  embedded, real, raw, history, reviews; scratch Postgres database and RabbitMQ vhost
    streaming.py  time to first token, POST /chat/stream vs POST /chat/ (--chunk-delay paces the model)
    report.py     targets, the text table, the chart
    cli.py        the options and `main(argv)`
"""

from __future__ import annotations

from daca_kit.ops.bench.cli import main

__all__ = ["main"]

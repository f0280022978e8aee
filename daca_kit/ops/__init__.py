"""Tooling around the app, for the notebooks and the `daca-kit` command: `doctor` (one round trip per
backend; the checks themselves in `checks`), `space/` (the Hugging Face Space: its targets and what they
cost, the folder, its checks, the deployment), `cronjob` (the nightly reset job, and reading it back),
`envfile` (.env without printing secrets), `client` and `launcher` (the app over HTTP and as a child
process), `verify` and `notebook` (helpers the notebooks share), and `bench/` (the benchmark).

Only the CLI and the notebooks import ops; `python app.py` never does, and the dependencies ops needs
(the `ops` extra) are not installed on a Space or in the Docker image. Ops may import core, adapters,
bootstrap, settings and errors; it talks to a running app through HTTP, never through web.
"""

"""The app's faces on one port: the REST API (`api/`, one router per resource), the Gradio UI (`ui/`, one
module per tab), who may do what (`auth`, with reviewer `passwords`, signed `sessions` and the `logins`
throttle), the server that builds and runs them (`server`; with `WEB_CONCURRENCY` > 1 its `workers`, and
the `relay` that carries the UI's requests to the one worker that serves it), and on a ZeroGPU Space the
one `@spaces.GPU` function that hardware requires (`zerogpu`).

Web imports core, `daca_kit.bootstrap`, settings and errors; it never imports adapters or ops.
"""

"""The app's faces on one port: the REST API (`api/`, one router per resource), the Gradio UI (`ui/`, one
module per tab), who may do what (`auth`, with reviewer `passwords`, signed `sessions` and the `logins`
throttle), and the server that builds and runs them (`server`).

Web imports core, `daca_kit.bootstrap`, settings and errors; it never imports adapters or ops.
"""

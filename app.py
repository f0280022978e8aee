"""daca_kit's app: the Gradio UI and the REST API in one process on one port (`PORT`, default 7860).

    python app.py            # what Hugging Face Spaces runs

With no settings it runs on embedded defaults (SQLite, embedded counters and events, offline replies).
"""

from __future__ import annotations

from daca_kit.web.server import main

if __name__ == "__main__":
    main()

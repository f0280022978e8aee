"""The Gradio UI: Chat, Review and Usage tabs, mounted at "/" on the REST API's app."""

from daca_kit.web.ui.app import build_blocks, mount_ui

__all__ = ["build_blocks", "mount_ui"]

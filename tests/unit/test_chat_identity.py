"""The Chat tab's identity: the browser's signed token, a new one when it does not verify, and a Hugging
Face sign-in (only where the tab offers it: on a Space with `hf_oauth: true`)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from daca_kit.web.auth import Auth
from daca_kit.web.identity import bound
from daca_kit.web.ui.chat import ChatHandlers
from daca_kit.web.ui.watch import TurnWatch


def profile(username: str) -> gr.OAuthProfile:
    return gr.OAuthProfile({"name": username, "preferred_username": username, "profile": "", "picture": ""})


def handlers(kit: Any, *, huggingface: bool) -> ChatHandlers:
    return ChatHandlers(
        kit, TurnWatch(kit), Auth.from_settings(kit.settings, kit.stores.keys), huggingface=huggingface
    )


def test_the_browser_keeps_its_id_and_a_forged_one_gets_a_new_id(make_kit: Any) -> None:
    chat = handlers(make_kit(), huggingface=False)
    first, token = chat.identity({}, None)
    assert bound(first) and chat.identity({"user_id": "x", "token": token}, None) == (first, token)
    for forged in ({"user_id": first}, {"user_id": first, "token": token[:-2]}, None, "junk"):
        assert chat.identity(forged, None)[0] not in (first, "")


def test_a_hugging_face_user_chats_as_name_at_hf_only_where_sign_in_is_offered(make_kit: Any) -> None:
    kit = make_kit()
    _, token = handlers(kit, huggingface=False).identity({}, None)
    assert handlers(kit, huggingface=True).identity({"token": token}, profile("alice"))[0] == "alice@hf"
    assert handlers(kit, huggingface=False).identity({"token": token}, profile("alice"))[0] != "alice@hf"

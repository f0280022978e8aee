"""Reviewer accounts and sessions: DACA_REVIEWERS parsed and checked, passwords stored as scrypt hashes,
session tokens signed with a key kept in the database (so they survive a restart and work in every worker
process) and refused once expired, tampered with, or for an account that changed."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest

from daca_kit.errors import ConfigError
from daca_kit.settings import Settings, load_settings
from daca_kit.web.auth import Auth, client_address
from daca_kit.web.passwords import hash_password, verify_password

ALICE_PW = "alice-long-password-1"


def make(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_password_hashes_verify_only_their_password() -> None:
    stored = hash_password(ALICE_PW)
    assert stored.startswith("scrypt$") and ALICE_PW not in stored
    assert "," not in stored and ":" not in stored  # fits in DACA_REVIEWERS' name:hash,name:hash
    assert verify_password(ALICE_PW, stored)
    assert not verify_password(ALICE_PW + "x", stored)
    assert not verify_password(ALICE_PW, "scrypt$bad")
    assert hash_password(ALICE_PW) != stored  # a fresh salt each time


def test_reviewers_setting_is_parsed_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = hash_password(ALICE_PW)
    s = make(reviewers=f" alice:{stored} , hf-bob ", host="127.0.0.1")
    assert s.password_reviewers == {"alice": stored}
    assert s.hf_reviewers == ("hf-bob",)

    cases = {
        "alice:not-a-hash": "reviewer-hash",
        f"alice:{stored},alice:{stored}": "twice",
        f"bad name:{stored}": "name",
        f"reviewer:{stored}": "DACA_REVIEWER_PASSWORD",  # beside DACA_REVIEWER_PASSWORD: which one?
    }
    for value, words in cases.items():
        monkeypatch.setenv("DACA_REVIEWERS", value)
        monkeypatch.setenv("DACA_REVIEWER_PASSWORD", "a-real-reviewer-password")
        monkeypatch.setenv("HOST", "127.0.0.1")
        with pytest.raises(ConfigError) as info:
            load_settings(_env_file=None)
        assert "DACA_REVIEWERS" in str(info.value) and words in str(info.value), value
        assert stored not in str(info.value)


def test_hugging_face_names_need_a_space_with_oauth_or_a_loopback_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DACA_REVIEWERS", "hf-bob")
    for name in ("SPACE_ID", "OAUTH_CLIENT_ID", "HOST"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as info:  # 0.0.0.0, not a Space: Gradio's mock would sign anyone in
        load_settings(_env_file=None)
    assert "DACA_REVIEWERS" in str(info.value) and "reviewer-hash" in str(info.value)

    monkeypatch.setenv("SPACE_ID", "someone/daca")
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    assert "hf_oauth: true" in str(info.value)

    monkeypatch.setenv("OAUTH_CLIENT_ID", "client-id-from-the-space")
    assert load_settings(_env_file=None).hf_reviewers == ("hf-bob",)


def test_proxy_hops_default_on_a_space_only() -> None:
    assert make().proxy_hops == 0
    assert make(space_id="someone/daca").proxy_hops == 1
    assert make(space_id="someone/daca", trusted_proxies=0).proxy_hops == 0
    assert make(trusted_proxies=2).proxy_hops == 2


@pytest.mark.parametrize(
    ("peer", "forwarded", "hops", "expected"),
    [
        ("10.0.0.1", None, 0, "10.0.0.1"),
        ("10.0.0.1", "203.0.113.9", 0, "10.0.0.1"),  # not trusted: the header is ignored
        ("10.0.0.1", "203.0.113.9", 1, "203.0.113.9"),
        ("10.0.0.1", "1.1.1.1, 203.0.113.9", 1, "203.0.113.9"),  # the left part is the client's own
        ("10.0.0.1", "1.1.1.1, 203.0.113.9, 10.0.0.7", 2, "203.0.113.9"),
        ("10.0.0.1", None, 1, "10.0.0.1"),
        ("10.0.0.1", "  ", 1, "10.0.0.1"),
        ("10.0.0.1", "203.0.113.9", 3, "203.0.113.9"),  # fewer entries than hops: the farthest one
        (None, None, 0, "unknown"),
    ],
)
def test_client_address(peer: str | None, forwarded: str | None, hops: int, expected: str) -> None:
    assert client_address(peer, forwarded, hops) == expected


def test_session_tokens_survive_a_restart_and_work_in_another_process(make_kit: Any) -> None:
    kit = make_kit()
    first = Auth.from_settings(kit.settings, kit.stores.keys)
    token = first.issue("reviewer")
    assert first.reviewer_of(token) == "reviewer"

    # A restart (or a second worker process) builds its own Auth on the same database.
    again = make_kit()  # the same SQLite file
    second = Auth.from_settings(again.settings, again.stores.keys)
    assert second.reviewer_of(token) == "reviewer"
    assert second.reviewer_of(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]) is None
    assert second.reviewer_of("forged-token") is None and second.reviewer_of(None) is None


def test_session_tokens_expire(make_kit: Any) -> None:
    now = [1_000_000.0]
    kit = make_kit()
    auth = Auth.from_settings(kit.settings, kit.stores.keys, clock=lambda: now[0])
    token = auth.issue("reviewer")
    now[0] += auth.session_ttl - 5
    assert auth.reviewer_of(token) == "reviewer"
    now[0] += 10
    assert auth.reviewer_of(token) is None


def test_a_token_ends_with_its_account(make_kit: Any) -> None:
    stored = hash_password(ALICE_PW)
    kit = make_kit(reviewers=f"alice:{stored}")
    token = Auth.from_settings(kit.settings, kit.stores.keys).issue("alice")
    removed = make_kit(reviewers=None)
    assert Auth.from_settings(removed.settings, removed.stores.keys).reviewer_of(token) is None
    changed = make_kit(reviewers=f"alice:{hash_password('a-new-password-for-alice')}")
    assert Auth.from_settings(changed.settings, changed.stores.keys).reviewer_of(token) is None
    same = make_kit(reviewers=f"alice:{stored}")
    assert Auth.from_settings(same.settings, same.stores.keys).reviewer_of(token) == "alice"


def test_the_signing_key_can_be_a_setting_and_is_never_shown(make_kit: Any, caplog: Any) -> None:
    secret = "a-session-secret-of-at-least-32-characters"
    caplog.set_level(logging.DEBUG)
    one, two = make_kit(session_secret=secret), make_kit(session_secret=secret, database_url="sqlite://")
    token = Auth.from_settings(one.settings, one.stores.keys).issue("reviewer")
    auth = Auth.from_settings(two.settings, two.stores.keys)
    assert auth.reviewer_of(token) == "reviewer"  # another database, the same key
    assert secret not in repr(auth) and secret not in repr(two.settings) and secret not in caplog.text
    with pytest.raises(ConfigError, match="DACA_SESSION_SECRET"):
        load_settings(_env_file=None, session_secret="too-short")


def test_reviewer_hash_command_reads_the_password_without_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    from daca_kit import cli

    asked: list[str] = []
    answers = iter([ALICE_PW, ALICE_PW])
    monkeypatch.setattr(cli, "getpass", lambda prompt: asked.append(prompt) or next(answers))
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    assert cli.main(["reviewer-hash", "alice"]) == 0
    line = out.getvalue().strip()
    name, _, stored = line.partition(":")
    assert name == "alice" and verify_password(ALICE_PW, stored)
    assert len(asked) == 2  # typed twice, never echoed, never in argv


def test_reviewer_hash_command_refuses_a_mismatch_and_a_short_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from daca_kit import cli

    for answers in ([ALICE_PW, ALICE_PW + "x"], ["short", "short"]):
        it = iter(answers)
        monkeypatch.setattr(cli, "getpass", lambda prompt, it=it: next(it))
        assert cli.main(["reviewer-hash", "alice"]) == 2


def test_a_hugging_face_user_not_on_the_list_is_refused(make_kit: Any) -> None:
    import gradio as gr

    from daca_kit.web.ui.reviewers import LOGIN_FIRST, ReviewerSessions

    kit = make_kit(reviewers="hf-alice", host="127.0.0.1")
    sessions = ReviewerSessions(Auth.from_settings(kit.settings, kit.stores.keys))

    def profile(username: str) -> gr.OAuthProfile:
        return gr.OAuthProfile(
            {"name": username, "preferred_username": username, "profile": "", "picture": ""}
        )

    assert sessions.reviewer(None, profile("HF-Alice")) == ("hf-alice", "Hugging Face")
    assert sessions.require("forged", profile("hf-alice")) == "hf-alice"
    for stranger in (profile("hf-mallory"), profile("reviewer"), None):
        with pytest.raises(gr.Error, match=LOGIN_FIRST.split(":")[0]):
            sessions.require(None, stranger)
    assert "not a reviewer here" in (sessions.not_listed(profile("hf-mallory")) or "")
    assert sessions.not_listed(profile("hf-alice")) is None
    # A Hugging Face name has no password: no password signs it in, so no token is ever issued for it.
    assert sessions.auth.sign_in("hf-alice", "", "198.51.100.1") is None

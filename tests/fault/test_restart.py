"""The app killed (SIGKILL) with 20 reviews pending, then restarted: every review is still decidable and
each approved turn is stored exactly once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.appproc import AppProcess, eventually

PENDING = 20


@pytest.mark.slow  # two app starts and 20 decisions
def test_twenty_pending_reviews_survive_a_hard_kill(tmp_path: Path) -> None:
    with AppProcess(tmp_path) as app, app.client() as client:
        ids = []
        for i in range(PENDING):
            sent = client.post("/chat/?wait=0", json={"user_id": f"user{i % 5}", "text": f"urgent: case {i}"})
            assert sent.status_code == 202, sent.text
            ids.append(sent.json()["instance_id"])

        app.kill()
        app.start()

        pending = client.get("/reviews", auth=app.reviewer_auth).json()
        assert sorted(r["instance_id"] for r in pending) == sorted(ids)
        for n, instance_id in enumerate(ids):
            approved = n % 4 != 3  # every fourth is rejected
            body = {"approved": approved, **({"reply": f"reviewed reply {n}"} if n % 2 else {})}
            decided = client.post(f"/reviews/{instance_id}", json=body, auth=app.reviewer_auth)
            assert decided.status_code == 200, decided.text
        assert (
            client.post(f"/reviews/{ids[0]}", json={"approved": True}, auth=app.reviewer_auth).status_code
            == 409
        )

        def finished() -> list[dict[str, object]] | None:
            turns = [client.get(f"/chat/{i}").json() for i in ids]
            return turns if all(t["status"] in ("completed", "rejected") for t in turns) else None

        turns = eventually(finished, timeout=30)
        assert client.get("/reviews", auth=app.reviewer_auth).json() == []

    for n, turn in enumerate(turns):
        if n % 4 == 3:
            assert turn["status"] == "rejected"
            assert turn["reply"] == "Message rejected by human reviewer."
        else:
            assert turn["status"] == "completed"
            assert turn["reply"]  # the proposed reply, or the reviewer's edit
            if n % 2:
                assert turn["reply"] == f"reviewed reply {n}"
    with sqlite3.connect(tmp_path / "daca.db") as db:
        rows = db.execute("SELECT instance_id, reply FROM conversation").fetchall()
    approved_ids = {i for n, i in enumerate(ids) if n % 4 != 3}
    assert len(rows) == len(approved_ids)
    assert {r[0] for r in rows} == approved_ids
    assert all(r[1] for r in rows)

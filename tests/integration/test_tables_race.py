"""Processes that start together on a fresh Postgres database (workers, replicas) all create the kit's tables;
each of them starts."""

from __future__ import annotations

import threading

import pytest

from daca_kit.adapters.sql.database import SqlDatabase
from tests.conftest import fresh_database

pytestmark = pytest.mark.integration


def _start_together(databases: list[SqlDatabase]) -> list[BaseException]:
    barrier = threading.Barrier(len(databases))
    failures: list[BaseException] = []

    def start(db: SqlDatabase) -> None:
        barrier.wait()
        try:
            db.create_all()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(db,)) for db in databases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return failures


def test_four_starts_at_once_on_a_fresh_database_all_succeed() -> None:
    for _round in range(3):
        with fresh_database() as url:
            databases = [SqlDatabase(url) for _ in range(4)]
            try:
                assert _start_together(databases) == []
            finally:
                for db in databases:
                    db.close()

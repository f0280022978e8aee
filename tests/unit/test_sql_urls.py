from daca_kit.adapters.sql import SqlDatabase, backend_kind, describe_url, normalize_url


def test_urls_choose_psycopg3_and_the_cockroachdb_dialect() -> None:
    assert normalize_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("cockroachdb://u@h:26257/db") == "cockroachdb+psycopg://u@h:26257/db"
    assert normalize_url("sqlite:///data/daca.db") == "sqlite:///data/daca.db"
    assert backend_kind("cockroachdb://x") == "cockroachdb" and backend_kind("sqlite://") == "sqlite"


def test_cockroachdb_engine_builds_without_connecting_and_keeps_the_tls_root_cert() -> None:
    url = "cockroachdb://daca:s3cret@free-tier.example:26257/daca?sslmode=verify-full&sslrootcert=/certs/root.crt"
    store = SqlDatabase(url)
    assert store.engine.dialect.name == "cockroachdb"
    args, kwargs = store.engine.dialect.create_connect_args(store.engine.url)
    assert kwargs.get("sslrootcert") == "/certs/root.crt" and kwargs.get("sslmode") == "verify-full"
    assert "s3cret" not in describe_url(url)
    store.close()

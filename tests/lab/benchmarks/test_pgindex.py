import numpy as np
import pytest
from django.db import connection

from lab.benchmarks import pgindex
from lab.metrics import exact_top_k, l2_normalise

pytestmark = pytest.mark.django_db


@pytest.fixture
def conn():
    conn = pgindex.scratch_connect(connection.get_connection_params())
    yield conn
    conn.close()


@pytest.mark.parametrize("kind", ["halfvec", "vector"])
def test_scratch_table_behind_hnsw_finds_the_exact_neighbours(conn, kind):
    rng = np.random.default_rng(0)
    base = l2_normalise(rng.standard_normal((300, 24)))
    categories = (np.arange(300) % 10).astype(np.int16)
    queries = l2_normalise(base[:12] + 0.05 * rng.standard_normal((12, 24)))
    table = pgindex.scratch_create(conn, tag=f"test_{kind}", kind=kind, dim=24, chunks=pgindex.array_chunks(base, categories, chunk=128))
    try:
        assert table.rows == 300
        assert conn.execute(f'SELECT count(*), max(id) FROM "{table.name}"').fetchone() == (300, 299)
        build = pgindex.hnsw_build(conn, table, m=8, ef_construction=32)
        assert build.index_bytes > 0 and build.seconds >= 0
        truth = exact_top_k(queries, base, 5)
        found, latencies = pgindex.index_search(conn, table, queries, k=5, ef_search=100, warmup=2)
        assert len(latencies) == 12 and (latencies > 0).all()
        assert np.mean([len(set(f) & set(t)) / 5 for f, t in zip(found, truth.tolist(), strict=True)]) > 0.9
        exact, _ = pgindex.index_search(conn, table, queries, k=5, ef_search=100, exact=True)
        # halfvec rounds the stored values: compare as sets, allow one swap at the edge.
        assert np.mean([len(set(f) & set(t)) / 5 for f, t in zip(exact, truth.tolist(), strict=True)]) > 0.95
        filtered, _ = pgindex.index_search(conn, table, queries, k=5, ef_search=40, iterative_scan="relaxed_order", category=[3] * 12)
        assert all(len(f) == 5 and all(i % 10 == 3 for i in f) for f in filtered)
    finally:
        pgindex.scratch_drop(conn, table)
    assert conn.execute("SELECT to_regclass(%s)", [table.name]).fetchone()[0] is None


def test_cleanup_drops_only_tables_of_dead_processes(conn):
    dead = "bench_leftover_p999999999"
    alive = pgindex.scratch_name("alive")
    for name in (dead, alive):
        conn.execute(f'CREATE UNLOGGED TABLE IF NOT EXISTS "{name}" (id int)')
    try:
        assert dead in pgindex.scratch_cleanup(conn)
        assert conn.execute("SELECT to_regclass(%s)", [dead]).fetchone()[0] is None
        assert conn.execute("SELECT to_regclass(%s)", [alive]).fetchone()[0] is not None
    finally:
        conn.execute(f'DROP TABLE IF EXISTS "{dead}"')
        conn.execute(f'DROP TABLE IF EXISTS "{alive}"')

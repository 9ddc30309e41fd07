"""Scratch tables of vectors behind a real pgvector HNSW index, for the benchmarks.

The evaluation and the ANN benchmark never write to ``visualsearch_imageembedding``:
they bulk-load their vectors into a table of their own (``bench_<tag>_<pid>``) in the
same database, build the same kind of index the application uses (HNSW, cosine,
``m``/``ef_construction`` from settings) and drop the table when done. A table left
behind by a crashed run is dropped by the next run (its pid is no longer alive).

Loading uses ``COPY ... FROM STDIN (FORMAT BINARY)`` with the rows packed by numpy:
measured on the 2-core box, 100,000 rows of halfvec(1280) load in 10-13 s this way,
against several minutes for INSERTs. Only psycopg and numpy here, no Django: callers
pass a connection (``scratch_connect`` opens one from Django's settings).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import psycopg

SCRATCH_PREFIX = "bench_"
# The in-memory HNSW graph of 1M x halfvec(1280) is about 3.3 GB; below this the build
# spills to disk and slows down many times (pgvector prints a NOTICE when it does).
MAINTENANCE_WORK_MEM = "6GB"
# Leader + one worker: the box has 2 cores.
PARALLEL_MAINTENANCE_WORKERS = 1
COPY_CHUNK_ROWS = 20_000
KINDS = ("halfvec", "vector")
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_BINARY_TRAILER = (-1).to_bytes(2, "big", signed=True)
_NAME_RE = re.compile(rf"^{SCRATCH_PREFIX}[a-z0-9_]+_p(\d+)$")


@dataclass(frozen=True)
class ScratchTable:
    name: str
    kind: str  # "halfvec" or "vector"
    dim: int
    rows: int


@dataclass(frozen=True)
class IndexBuild:
    seconds: float
    index_bytes: int
    table_bytes: int
    m: int
    ef_construction: int


def scratch_connect(params: dict) -> psycopg.Connection:
    """An autocommit psycopg connection with the pgvector types registered.

    ``params`` is ``django.db.connection.get_connection_params()`` (Django-only keys are
    dropped), so the scratch tables live in whatever database the caller uses: the dev
    database for a command, the test database under pytest.
    """
    from pgvector.psycopg import register_vector

    clean = {k: v for k, v in params.items() if k not in {"cursor_factory", "context", "prepare_threshold"}}
    conn = psycopg.connect(**clean, autocommit=True)
    register_vector(conn)
    return conn


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def scratch_cleanup(conn: psycopg.Connection) -> list[str]:
    """Drop scratch tables whose creating process is gone; return their names."""
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE %s",
        [SCRATCH_PREFIX + "%"],
    ).fetchall()
    dropped = []
    for (name,) in rows:
        match = _NAME_RE.match(name)
        if match and not _pid_alive(int(match.group(1))):
            conn.execute(f'DROP TABLE IF EXISTS "{name}"')
            dropped.append(name)
    return dropped


def scratch_name(tag: str) -> str:
    safe = re.sub(r"[^a-z0-9_]", "_", tag.lower())
    return f"{SCRATCH_PREFIX}{safe}_p{os.getpid()}"[:63]


def _pack_rows(ids: np.ndarray, categories: np.ndarray, vectors: np.ndarray, kind: str) -> bytes:
    """Rows (id int4, category int2, v halfvec|vector) in PostgreSQL's binary COPY layout."""
    n, dim = vectors.shape
    value_type = ">f2" if kind == "halfvec" else ">f4"
    value_bytes = 2 if kind == "halfvec" else 4
    row = np.dtype(
        [
            ("nfields", ">i2"),
            ("id_len", ">i4"),
            ("id", ">i4"),
            ("cat_len", ">i4"),
            ("cat", ">i2"),
            ("v_len", ">i4"),
            ("v_dim", ">u2"),
            ("v_unused", ">u2"),
            ("v", value_type, (dim,)),
        ]
    )
    packed = np.empty(n, dtype=row)
    packed["nfields"] = 3
    packed["id_len"] = 4
    packed["id"] = ids
    packed["cat_len"] = 2
    packed["cat"] = categories
    packed["v_len"] = 4 + dim * value_bytes
    packed["v_dim"] = dim
    packed["v_unused"] = 0
    packed["v"] = vectors
    return packed.tobytes()


def scratch_create(
    conn: psycopg.Connection,
    *,
    tag: str,
    kind: str,
    dim: int,
    chunks: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> ScratchTable:
    """Create ``bench_<tag>_p<pid>`` and COPY the ``(ids, categories, vectors)`` chunks into it."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    name = scratch_name(tag)
    conn.execute(f'DROP TABLE IF EXISTS "{name}"')
    # UNLOGGED: scratch data, no WAL to write; the table is dropped at the end anyway.
    conn.execute(f'CREATE UNLOGGED TABLE "{name}" (id integer NOT NULL, category smallint NOT NULL, v {kind}({int(dim)}) NOT NULL)')
    rows = 0
    with conn.cursor() as cur, cur.copy(f'COPY "{name}" (id, category, v) FROM STDIN WITH (FORMAT BINARY)') as copy:
        copy.write(_BINARY_HEADER)
        for ids, categories, vectors in chunks:
            copy.write(_pack_rows(ids, categories, vectors, kind))
            rows += len(ids)
        copy.write(_BINARY_TRAILER)
    conn.execute(f'ANALYZE "{name}"')
    return ScratchTable(name=name, kind=kind, dim=int(dim), rows=rows)


def array_chunks(
    vectors: np.ndarray, categories: np.ndarray | None = None, chunk: int = COPY_CHUNK_ROWS
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Chunks of an in-memory array for ``scratch_create``; ids are row numbers."""
    n = len(vectors)
    cats = np.zeros(n, dtype=np.int16) if categories is None else categories
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        yield np.arange(start, stop, dtype=np.int32), cats[start:stop], vectors[start:stop]


def hnsw_build(conn: psycopg.Connection, table: ScratchTable, *, m: int, ef_construction: int) -> IndexBuild:
    """Build the cosine HNSW index on ``table`` and report its build time and size."""
    opclass = f"{table.kind}_cosine_ops"
    index = f"{table.name}_hnsw"[:63]
    conn.execute(f"SET maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
    conn.execute(f"SET max_parallel_maintenance_workers = {PARALLEL_MAINTENANCE_WORKERS}")
    started = time.perf_counter()
    conn.execute(
        f'CREATE INDEX "{index}" ON "{table.name}" USING hnsw (v {opclass}) '
        f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
    )
    seconds = time.perf_counter() - started
    conn.execute("RESET maintenance_work_mem")
    conn.execute("RESET max_parallel_maintenance_workers")
    index_bytes, table_bytes = conn.execute(
        "SELECT pg_relation_size(%s::regclass), pg_table_size(%s::regclass)", [f'"{index}"', f'"{table.name}"']
    ).fetchone()
    return IndexBuild(seconds=seconds, index_bytes=int(index_bytes), table_bytes=int(table_bytes), m=m, ef_construction=ef_construction)


def scratch_drop(conn: psycopg.Connection, table: ScratchTable) -> None:
    conn.execute(f'DROP TABLE IF EXISTS "{table.name}"')


def _query_value(table: ScratchTable, vector: np.ndarray):
    from pgvector import HalfVector, Vector

    vector = np.asarray(vector, dtype=np.float32)
    return HalfVector(vector) if table.kind == "halfvec" else Vector(vector)


def index_search(
    conn: psycopg.Connection,
    table: ScratchTable,
    queries: np.ndarray,
    *,
    k: int,
    ef_search: int,
    iterative_scan: str = "off",
    category: Sequence[int] | None = None,
    exact: bool = False,
    warmup: int = 0,
) -> tuple[list[list[int]], np.ndarray]:
    """Top-``k`` row ids per query and each query's latency in ms (client round trip).

    ``exact=True`` turns index scans off, so PostgreSQL scans the table and sorts: the
    in-database exact answer. ``category`` (one value per query) adds the filter
    ``category = x``; ``iterative_scan`` is pgvector 0.8's ``hnsw.iterative_scan``. A
    filtered query is kept on the HNSW index (sequential scans off): the point is what
    the index returns, not whether the planner would have chosen it.
    The first ``warmup`` queries are run twice and only the second run is timed.
    """
    conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")
    conn.execute(f"SET hnsw.iterative_scan = {iterative_scan}")
    conn.execute(f"SET enable_indexscan = {'off' if exact else 'on'}")
    conn.execute(f"SET enable_seqscan = {'off' if category is not None and not exact else 'on'}")
    where = "WHERE category = %s " if category is not None else ""
    sql = f'SELECT id FROM "{table.name}" {where}ORDER BY v <=> %s LIMIT %s'
    results: list[list[int]] = []
    latencies = np.empty(len(queries), dtype=np.float64)
    try:
        with conn.cursor() as cur:
            for i, query in enumerate(queries):
                params = ([int(category[i])] if category is not None else []) + [_query_value(table, query), k]
                if i < warmup:
                    cur.execute(sql, params, prepare=True).fetchall()
                started = time.perf_counter()
                rows = cur.execute(sql, params, prepare=True).fetchall()
                latencies[i] = (time.perf_counter() - started) * 1000.0
                results.append([r[0] for r in rows])
    finally:
        conn.execute("RESET hnsw.ef_search")
        conn.execute("RESET hnsw.iterative_scan")
        conn.execute("RESET enable_indexscan")
        conn.execute("RESET enable_seqscan")
    return results, latencies

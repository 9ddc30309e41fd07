"""Filtered search at scale: walking the HNSW graph against reading the filter's rows.

``python manage.py bench_exact_filter --rows 100000`` (the dev database): a scratch table
(``lab.benchmarks.pgindex``) of the active model's catalogue vectors plus noise (σ 0.02,
``halfvec``, HNSW m 16 / ef_construction 64), categories of a few sizes, 30 noisy queries
each, 55 rows asked for. The walk is kept on the HNSW index (pgvector's iterative scan,
``ef_search`` 100); the exact search reads the category through a B-tree and sorts. Prints
p50 latencies and how much of the exact top 44 the walk found, and writes
``reports/exact_filter_<rows>.json``. What it chose:
``visualsearch.selectors.EXACT_SEARCH_PER_ROOT`` (docs/benchmarks.md, "Filtered queries").
"""

from __future__ import annotations

import numpy as np
from django.db import connection

from lab.benchmarks import pgindex
from visualsearch.models import ImageEmbedding
from visualsearch.selectors import active_model_name

ASKED, COMPARED, QUERIES = 55, 44, 30


def category_sizes(rows: int) -> list[int]:
    return [100, 300, 1000, 2000, 5000] if rows <= 100_000 else [100, 1000, 5000, 20_000, 50_000]


def run(rows: int, seed: int = 0, log=print) -> list[dict]:
    base = np.array([
        np.asarray(v.to_numpy(), dtype=np.float32)
        for v in ImageEmbedding.objects.filter(model_name=active_model_name()).values_list("vector", flat=True)
    ])
    if not len(base):
        raise ValueError("No vectors of the active model: run `make embed` first.")
    rng = np.random.default_rng(seed)
    vectors = base[rng.integers(0, len(base), rows)] + rng.normal(0, 0.02, (rows, base.shape[1])).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sizes, category = [], np.zeros(rows, dtype=np.int16)
    order, start = rng.permutation(rows), 0
    for label, size in enumerate(category_sizes(rows), start=1):
        members = order[start : start + size]  # a small table gets what is left
        if not len(members):
            break
        category[members] = label
        sizes.append(len(members))
        start += len(members)
    queries = vectors[rng.integers(0, rows, QUERIES)] + rng.normal(0, 0.03, (QUERIES, base.shape[1])).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    conn = pgindex.scratch_connect(connection.get_connection_params())
    pgindex.scratch_cleanup(conn)
    table = pgindex.scratch_create(
        conn, tag="exact_filter", kind="halfvec", dim=base.shape[1], chunks=pgindex.array_chunks(vectors, category)
    )
    try:
        build = pgindex.hnsw_build(conn, table, m=16, ef_construction=64)
        log(f"{rows:,} rows, HNSW built in {build.seconds:.0f} s")
        # The walk first, while the HNSW index is the table's only index: as the application's
        # filter (an EXISTS over the products) gets it. Then the category's B-tree, which the
        # exact search (index scans off, so no HNSW) reads through before sorting.
        walks = {
            label: pgindex.index_search(conn, table, queries, k=ASKED, ef_search=100, iterative_scan="relaxed_order",
                                        category=[label] * QUERIES)
            for label in range(1, len(sizes) + 1)
        }
        conn.execute(f'CREATE INDEX ON "{table.name}" (category)')
        conn.execute(f'ANALYZE "{table.name}"')
        results = []
        for label, size in enumerate(sizes, start=1):
            walked, walked_ms = walks[label]
            exact, exact_ms = pgindex.index_search(conn, table, queries, k=ASKED, ef_search=100, category=[label] * QUERIES, exact=True)
            found = [len(set(w[:COMPARED]) & set(e[:COMPARED])) / COMPARED for w, e in zip(walked, exact, strict=True)]
            row = {"rows": rows, "category_rows": size, "walked_p50_ms": round(float(np.median(walked_ms)), 2),
                   "exact_p50_ms": round(float(np.median(exact_ms)), 2), "walked_found": round(float(np.mean(found)), 3)}
            log(f"category of {size:,} rows: walked {row['walked_p50_ms']} ms, exact {row['exact_p50_ms']} ms, "
                f"the walk found {row['walked_found']} of the exact top {COMPARED}")
            results.append(row)
    finally:
        pgindex.scratch_drop(conn, table)
        conn.close()
    return results

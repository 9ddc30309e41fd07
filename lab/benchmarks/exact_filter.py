"""Filtered search at scale: walking the HNSW graph against reading the filter's rows.

``python manage.py bench_exact_filter --rows 100000`` (the dev database; ~1 min at 100k,
~8 min at 1M): a scratch table of the active model's catalogue vectors plus noise (σ 0.02,
``halfvec``, HNSW m 16 / ef_construction 64, a B-tree on the category), categories of a few
sizes, 30 noisy queries each, 55 rows asked for. The walk is forced (``enable_sort`` off,
pgvector's iterative scan, ``ef_search`` 100); the exact search orders by ``distance + 0``
through the B-tree. Prints p50 latencies and how much of the exact top 44 the walk found,
and writes ``reports/exact_filter_<rows>.json``. What it chose:
``visualsearch.selectors.EXACT_SEARCH_PER_ROOT`` (docs/benchmarks.md, "Filtered queries").
"""

from __future__ import annotations

import os
import time

import numpy as np
from django.db import connection
from pgvector import HalfVector

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
    sizes, category = [], np.zeros(rows, dtype=np.int32)
    order, start = rng.permutation(rows), 0
    for label, size in enumerate(category_sizes(rows), start=1):
        members = order[start : start + size]  # a small table gets what is left
        if not len(members):
            break
        category[members] = label
        sizes.append(len(members))
        start += len(members)
    table, dim = f"bench_exact_{os.getpid()}", base.shape[1]
    results = []
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, category int, v halfvec({dim}))")
        try:
            with cursor.connection.cursor().copy(f"COPY {table} (id, category, v) FROM STDIN") as copy:
                for i in range(rows):
                    copy.write_row((i, int(category[i]), HalfVector(vectors[i]).to_text()))
            cursor.execute(f"CREATE INDEX ON {table} (category)")
            cursor.execute("SET maintenance_work_mem = '2GB'")
            built = time.perf_counter()
            cursor.execute(f"CREATE INDEX ON {table} USING hnsw (v halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)")
            cursor.execute(f"ANALYZE {table}")
            log(f"{rows:,} rows, HNSW built in {time.perf_counter() - built:.0f} s")
            queries = [vectors[rng.integers(rows)] + rng.normal(0, 0.03, dim).astype(np.float32) for _ in range(QUERIES)]
            for label, size in enumerate(sizes, start=1):
                walked_ms, exact_ms, found = [], [], []
                for query in queries:
                    text = HalfVector(query / np.linalg.norm(query)).to_text()
                    cursor.execute("BEGIN")
                    cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                    cursor.execute("SET LOCAL hnsw.ef_search = 100")
                    cursor.execute("SET LOCAL enable_sort = off")  # the graph, as the application's filter gets
                    t0 = time.perf_counter()
                    cursor.execute(f"SELECT id FROM {table} WHERE category = %s ORDER BY v <=> %s::halfvec({dim}) LIMIT {ASKED}", [label, text])
                    walked = [r[0] for r in cursor.fetchall()]
                    walked_ms.append((time.perf_counter() - t0) * 1000)
                    cursor.execute("COMMIT")
                    t0 = time.perf_counter()
                    cursor.execute(f"SELECT id FROM {table} WHERE category = %s ORDER BY (v <=> %s::halfvec({dim})) + 0 LIMIT {ASKED}", [label, text])
                    exact = [r[0] for r in cursor.fetchall()]
                    exact_ms.append((time.perf_counter() - t0) * 1000)
                    found.append(len(set(walked[:COMPARED]) & set(exact[:COMPARED])) / COMPARED)
                row = {"rows": rows, "category_rows": size, "walked_p50_ms": round(float(np.median(walked_ms)), 2),
                       "exact_p50_ms": round(float(np.median(exact_ms)), 2), "walked_found": round(float(np.mean(found)), 3)}
                log(f"category of {size:,} rows: walked {row['walked_p50_ms']} ms, exact {row['exact_p50_ms']} ms, "
                    f"the walk found {row['walked_found']} of the exact top {COMPARED}")
                results.append(row)
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
    return results


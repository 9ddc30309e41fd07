"""The pgvector contract: every search query of the project can use the model's HNSW index.

PostgreSQL uses the partial index over ``vector::halfvec(dim)`` only when a query orders by
exactly that expression and implies the index's predicate; if the two drift apart, searches
silently become sequential scans. So each search path is run for real, its SQL captured, and
``EXPLAIN`` asked for its plan with sequential scans priced out (a 30-row table is otherwise
cheaper to scan): an index that *can* be used then is.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from shop.filters import ProductFilters
from tests.visualsearch.random_catalogue import DIM, MODEL, random_indexed_catalogue
from visualsearch import index, selectors
from visualsearch.duplicates.services import duplicates_detect
from visualsearch.models import ImageEmbedding
from visualsearch.selectors import nearest_product_ids

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def indexed(settings):
    settings.VISUALSEARCH_MODEL = MODEL
    return random_indexed_catalogue(small="shoes", every=3, size=30, seed=0)


def _search_statements(queries: list[dict]) -> list[str]:
    """The statements that order by a vector distance (the search settings prefix removed)."""
    out = []
    for query in queries:
        sql = query["sql"]
        if "<=>" not in sql:
            continue
        if "set_config('hnsw.iterative_scan'" in sql:
            sql = sql.split(";", 1)[1]
        out.append(sql.strip())
    return out


def _plan(sql: str) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        # Likewise sorting: once autovacuum has analysed the table (the suite's committed rows can
        # trigger it before this module runs), the planner reckons that sorting a tiny table's rows
        # beats the HNSW scan, which a real catalogue's would not. A query the index cannot serve
        # still sorts (a disabled plan is taken when there is no other) and fails the assertion.
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def _assert_every_search_uses_the_index(queries: list[dict]) -> int:
    statements = _search_statements(queries)
    assert statements, "no vector search was captured"
    name = index.hnsw_index_name(MODEL, DIM)
    for sql in statements:
        plan = _plan(sql)
        assert f"Index Scan using {name}" in plan, f"not an index scan:\n{sql}\n{plan}"
    return len(statements)


@pytest.mark.parametrize(
    "filters,exclude",
    [
        (None, ()),
        (ProductFilters(category="shoes"), ()),
        (ProductFilters(gender="men", max_price=2000), (1, 2, 3)),  # the factory's products pass
    ],
    ids=["plain", "category", "filters-and-exclusions"],
)
def test_photo_search_and_similar_items_use_the_index(indexed, filters, exclude, settings):
    _, vectors, _ = indexed
    # A filter leaving few products is searched exactly (tests/visualsearch/test_search_exact.py);
    # here every filter is taken for a large one, as in a real catalogue.
    settings.VISUALSEARCH_EXACT_SEARCH_MAX_PRODUCTS = -1
    with CaptureQueriesContext(connection) as captured:
        nearest_product_ids(vector=vectors[0], k=5, filters=filters, exclude_product_ids=exclude)
    assert _assert_every_search_uses_the_index(captured.captured_queries) == 1


def test_duplicate_detection_neighbours_use_the_index(indexed):
    images, _, _ = indexed
    with CaptureQueriesContext(connection) as captured:
        duplicates_detect(image_ids=[img.id for img in images[:4]], model_name=MODEL)
    # The HNSW neighbour query (the hash-band query orders by Hamming distance, not by vector).
    assert _assert_every_search_uses_the_index(
        [q for q in captured.captured_queries if "LATERAL" in q["sql"] and "bands" not in q["sql"]]
    ) == 1


def test_the_index_ddl_and_the_query_share_one_expression():
    created = index.hnsw_index(MODEL, DIM)
    assert created.name == index.hnsw_index_name(MODEL, DIM)
    with connection.schema_editor() as editor:
        ddl = str(created.create_sql(model=ImageEmbedding, schema_editor=editor))
    assert '("vector")::halfvec(1280)) halfvec_cosine_ops' in ddl
    assert index.vector_cast_sql(DIM, "e.vector") == "((e.vector))::halfvec(1280)"

"""The pgvector contract, in one place: how vectors are cast, indexed and searched.

``ImageEmbedding.vector`` is a ``halfvec`` without a fixed dimension, so that models of
different sizes live side by side while a catalogue is re-indexed. Each (model, dimension)
gets its own *partial* HNSW index over the expression ``vector::halfvec(<dim>)``, holding
that model's canonical rows only (one per distinct image bytes: a photo re-used by 500
listings is one graph node, not 500 identical ones, which degrade HNSW).

PostgreSQL uses such an index only when a query orders by exactly the indexed expression
and its WHERE clause implies the index's predicate. Both sides are therefore generated
here, from :func:`vector_cast`: the index (:func:`hnsw_index`, a pgvector-python
``HnswIndex`` over ``OpClass(Cast(...))``) and the query's distance
(:func:`cosine_distance`, or :func:`vector_cast_sql` for raw SQL). A test runs ``EXPLAIN``
on every search query of the project and checks that it scans the index.

Search settings are transaction-local (``set_config(..., true)`` is ``SET LOCAL``):
``hnsw.iterative_scan = relaxed_order`` (pgvector 0.8) keeps walking the graph until a
selective filter has let ``k`` rows through, and ``hnsw.ef_search`` sizes the candidate
list (``VISUALSEARCH_HNSW_EF_SEARCH``; how it was chosen: ``docs/benchmarks.md``).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import OpClass
from django.db import connection
from django.db.models import F, Q, Value
from django.db.models.expressions import Expression, RawSQL
from django.db.models.functions import Cast
from pgvector import HalfVector
from psycopg import ClientCursor
from pgvector.django import CosineDistance, HalfVectorField, HnswIndex

from shop.models import Product, ProductImage
from visualsearch.duplicates.models import ImageFingerprint
from visualsearch.models import ImageEmbedding

OPCLASS = "halfvec_cosine_ops"
# Postgres truncates identifiers to 63 bytes.
MAX_IDENTIFIER = 63


def vector_cast(dim: int, column: Expression | str = "vector") -> Cast:
    """``<column>::halfvec(<dim>)``: the expression every HNSW index is built on."""
    return Cast(F(column) if isinstance(column, str) else column, HalfVectorField(dimensions=int(dim)))


def hnsw_index_name(model_name: str, dim: int) -> str:
    safe = "".join(ch if ch.isalnum() else "_" for ch in model_name.lower())
    # "_c": the index holds canonical rows only (one per distinct image bytes).
    return f"embedding_hnsw_{safe}_{int(dim)}_c"[:MAX_IDENTIFIER]


def _legacy_hnsw_index_name(model_name: str, dim: int) -> str:
    # Before exact copies shared one node every row was indexed; such an index is replaced.
    safe = "".join(ch if ch.isalnum() else "_" for ch in model_name.lower())
    return f"embedding_hnsw_{safe}_{int(dim)}"[:MAX_IDENTIFIER]


def index_predicate(model_name: str, dim: int) -> Q:
    """The rows one model's index holds; a search must filter on exactly this."""
    return Q(model_name=model_name, dim=int(dim), is_canonical=True)


def hnsw_index(model_name: str, dim: int) -> HnswIndex:
    return HnswIndex(
        OpClass(vector_cast(dim), name=OPCLASS),
        name=hnsw_index_name(model_name, dim),
        m=settings.VISUALSEARCH_HNSW_M,
        ef_construction=settings.VISUALSEARCH_HNSW_EF_CONSTRUCTION,
        condition=index_predicate(model_name, dim),
    )


def cosine_distance(dim: int, vector) -> CosineDistance:
    """Distance from the indexed expression to ``vector`` (a numpy array or a list)."""
    query = Cast(Value(HalfVector(vector).to_text()), HalfVectorField(dimensions=int(dim)))
    return CosineDistance(vector_cast(dim), query)


def vector_cast_sql(dim: int, column: str) -> str:
    """The indexed expression as SQL text for raw queries over ``column`` (e.g. ``"e.vector"``).

    Compiled from :func:`vector_cast`, so it cannot drift from what the index is built on.
    """
    query = ImageEmbedding.objects.all().query
    expression = vector_cast(dim, RawSQL(column, ())).resolve_expression(query)
    sql, params = query.get_compiler(connection=connection).compile(expression)
    assert not params
    return sql


def index_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return bool(cursor.fetchone()[0])


def index_is_valid(name: str) -> bool:
    """Whether the index exists and is usable (a failed concurrent build leaves an invalid one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT x.indisvalid FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid "
            "WHERE c.relname = %s AND c.relkind = 'i'",
            [name],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def embedding_index_ensure(*, model_name: str, dim: int) -> str:
    """Create the model's partial HNSW index if it is missing; return its name.

    The existence check comes first because CREATE INDEX locks the table against writes
    even when the index is already there.
    """
    index = hnsw_index(model_name, dim)
    legacy = _legacy_hnsw_index_name(model_name, dim)
    if index_exists(index.name) and not index_exists(legacy):
        return index.name
    with connection.cursor() as cursor:
        # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED; PostgreSQL refuses to
        # build an index while deferred checks are pending in the transaction, so run
        # them now and go back to the initial (deferred) mode.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        if not index_exists(index.name):
            with connection.schema_editor(atomic=False) as editor:
                editor.add_index(ImageEmbedding, index)
        cursor.execute(f"DROP INDEX IF EXISTS {connection.ops.quote_name(legacy)}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    return index.name


def tables_analyze() -> None:
    """Refresh the planner's statistics of the tables a bulk load just filled.

    Autovacuum analyses a freshly loaded table only after a minute or so; a query planned
    before that sees an "empty" table. On a fresh demo database the duplicate scan's
    hash-band query, planned on such statistics, ignored the bands' GIN index and ran for
    more than 8 minutes on its first batch (2026-12-01); ANALYZE of these tables takes
    ~0.1 s for 3,000 images.
    """
    tables = [model._meta.db_table for model in (ImageEmbedding, ImageFingerprint, Product, ProductImage)]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(t) for t in tables))


def embedding_index_rebuild(*, model_name: str, dim: int) -> str:
    """Drop the model's index (e.g. an invalid one) and build it again."""
    name = hnsw_index_name(model_name, dim)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {connection.ops.quote_name(name)}")
    return embedding_index_ensure(model_name=model_name, dim=dim)


_SEARCH_SETTINGS_SQL = (
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.ef_search', %s, true)"
)


def execute_search(cursor, sql: str, params: list) -> None:
    """Run a search statement after the transaction-local HNSW settings.

    One round trip when the connection binds parameters client-side (Django's default
    with psycopg 3), else two. The caller's transaction scopes the settings, so call this
    inside ``transaction.atomic()``.
    """
    ef_search = str(settings.VISUALSEARCH_HNSW_EF_SEARCH)
    raw = getattr(cursor, "cursor", cursor)
    if isinstance(raw, ClientCursor):
        cursor.execute(f"{_SEARCH_SETTINGS_SQL}; {sql}", [ef_search, *params])
        cursor.nextset()  # the rows of the second statement
    else:
        cursor.execute(_SEARCH_SETTINGS_SQL, [ef_search])
        cursor.execute(sql, params)

"""Nearest-neighbour reads over the embeddings, through the per-model HNSW index."""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.expressions import RawSQL
from pgvector import HalfVector

from shop.filters import ProductFilters, products_matching
from shop.models import Product, ProductImage
from shop.selectors import product_cards_by_ids
from visualsearch import index
from visualsearch.colour import ColourProfile, studio_profiles
from visualsearch.duplicates.detection import DEFAULT_THRESHOLDS, Fingerprint, hash_distance, same_photo_ranked
from visualsearch.embedding import available_models, model_metadata
from visualsearch.embedding.config import model_card_path
from visualsearch.models import (
    EmbeddingModel,
    ImageEmbedding,
    ImageFingerprint,
    ModelActivation,
)

# Each product can have several images; asking the index for a few more rows than k
# leaves room to fold them into one hit per product: the catalogue's images per product
# times HEADROOM_MARGIN, between MIN_HEADROOM and IMAGES_PER_PRODUCT_HEADROOM (also used
# when the planner has no row estimates yet). Rows cost: a photo search asks for 44
# products: 132 rows took 11.1 ms, 55 rows 7.8 ms, same recall against exact search (demo
# catalogue, one image a product, 2026-12-06; docs/benchmarks.md "Photo search, in process: two cuts").
IMAGES_PER_PRODUCT_HEADROOM = 3
MIN_HEADROOM = 1.25
HEADROOM_MARGIN = 1.25
# The ratio comes from PostgreSQL's row estimates (pg_class.reltuples, kept by ANALYZE and
# autovacuum: no count over the catalogue), read at most this often per process.
HEADROOM_TTL = 600.0
_headroom: dict = {"value": float(IMAGES_PER_PRODUCT_HEADROOM), "products": 0.0, "read_at": float("-inf")}
# Listings of one photo fold into one result: a few more products than k keep the list full.
FOLD_HEADROOM = 8
# With a colour term, the nearest k * this are re-ranked (the colour can promote a garment
# from the second page, not from the tenth).
COLOUR_CANDIDATES_FACTOR = 3
# A filter that leaves few products is searched exactly, without the HNSW index: the index
# walks the graph until enough rows pass the filter (pgvector's iterative scan), i.e. about
# k / (the filter's share of the catalogue) rows, while the exact search reads the filter's
# rows only - so the crossover grows with the square root of the catalogue. Measured
# (docs/benchmarks.md, "Filtered queries", 2026-12-06; 44 products asked for, walked /
# exact, p50): the demo's 3,000 products, the application's query - categories of 1-67
# products 16-24 / 4-8 ms, 604 products 9.4 / 6.5, 1,890 10.2 / 12.4; 100,000 catalogue
# vectors with noise, one table - 2,000 rows 11.6 / 1.6 ms, 5,000 5.5 / 3.6; 1,000,000 -
# 5,000 rows 129 / 18 ms, 20,000 33 / 63. The walk also misses rows there (recall@44 0.06
# for a 100-row filter at 1M: it gives up after hnsw.max_scan_tuples). Hence
# max(EXACT_SEARCH_MIN_PRODUCTS, EXACT_SEARCH_PER_ROOT x sqrt(products)): 1,000 on the demo,
# 3,162 at 100k, 10,000 at 1M, 70,711 at 50M (not measured there). The products come from
# PostgreSQL's row estimates, as the headroom's; the filter's own count (up to the limit
# + 1) is taken when its search statement is compiled, once per VISUALSEARCH_SHELVES_TTL.
EXACT_SEARCH_MIN_PRODUCTS = 1000
EXACT_SEARCH_PER_ROOT = 10.0


_active_lock = threading.Lock()
_active: dict = {"name": None, "read_at": float("-inf")}


def active_model_name() -> str:
    """The embedding model that searches read and the workers index: the registry's active
    row (``EmbeddingModel``), else the setting ``VISUALSEARCH_MODEL``.

    Read from the database at most every ``VISUALSEARCH_ACTIVE_MODEL_TTL`` seconds per
    process, so a promotion reaches every web and worker process within that time without
    a restart; callers resolve it once per search and pass it down, so one search never
    mixes two models.
    """
    now = time.monotonic()
    with _active_lock:
        if _active["name"] is not None and now - _active["read_at"] < settings.VISUALSEARCH_ACTIVE_MODEL_TTL:
            return _active["name"]
    name = EmbeddingModel.objects.filter(state=EmbeddingModel.State.ACTIVE).values_list("name", flat=True).first()
    name = name or settings.VISUALSEARCH_MODEL
    with _active_lock:
        _active.update(name=name, read_at=now)
    return name


def images_per_product_headroom() -> float:
    """Index rows to ask for per product wanted (see IMAGES_PER_PRODUCT_HEADROOM); the
    setting ``VISUALSEARCH_INDEX_ROWS_PER_PRODUCT`` fixes it."""
    if settings.VISUALSEARCH_INDEX_ROWS_PER_PRODUCT is not None:
        return settings.VISUALSEARCH_INDEX_ROWS_PER_PRODUCT
    return _catalogue_estimates()["value"]


def _catalogue_estimates() -> dict:
    """The headroom and the products' row estimate, read at most every HEADROOM_TTL seconds."""
    now = time.monotonic()
    if now - _headroom["read_at"] < HEADROOM_TTL:
        return _headroom
    alias = router.db_for_read(ProductImage)
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT reltuples FROM pg_class WHERE oid = %s::regclass),"
            " (SELECT reltuples FROM pg_class WHERE oid = %s::regclass)",
            [ProductImage._meta.db_table, Product._meta.db_table],
        )
        images, products = cursor.fetchone()
    _headroom.update(value=headroom_from_estimates(images, products), products=max(0.0, float(products or 0.0)), read_at=now)
    return _headroom


def exact_search_max_products() -> int:
    """The most products a filter may leave to be searched exactly (see EXACT_SEARCH_PER_ROOT);
    the setting ``VISUALSEARCH_EXACT_SEARCH_MAX_PRODUCTS`` fixes it."""
    if settings.VISUALSEARCH_EXACT_SEARCH_MAX_PRODUCTS is not None:
        return settings.VISUALSEARCH_EXACT_SEARCH_MAX_PRODUCTS
    products = _catalogue_estimates()["products"]
    return max(EXACT_SEARCH_MIN_PRODUCTS, int(EXACT_SEARCH_PER_ROOT * math.sqrt(products)))


def headroom_from_estimates(images: float | None, products: float | None) -> float:
    """The headroom for these row estimates (-1 or 0 where a table was never analysed: the most)."""
    if not images or not products or images < 0 or products < 0:
        return float(IMAGES_PER_PRODUCT_HEADROOM)
    return min(float(IMAGES_PER_PRODUCT_HEADROOM), max(MIN_HEADROOM, HEADROOM_MARGIN * images / products))


def images_per_product_forget() -> None:
    """Read the ratio again at the next search (tests; after a bulk import in this process)."""
    _headroom.update(value=float(IMAGES_PER_PRODUCT_HEADROOM), products=0.0, read_at=float("-inf"))


def active_model_forget() -> None:
    """Drop this process's cached active model (after a promotion here, and in tests)."""
    with _active_lock:
        _active.update(name=None, read_at=float("-inf"))


def models_kept_fresh() -> list[str]:
    """Models new images are embedded with: the active one first, then candidates and the standby."""
    active = active_model_name()
    others = EmbeddingModel.objects.filter(
        state__in=[EmbeddingModel.State.CANDIDATE, EmbeddingModel.State.STANDBY]
    ).exclude(name=active).exclude(index_requested_at=None).order_by("name").values_list("name", flat=True)
    return [active, *others]


def model_coverage(*, model_names: Sequence[str]) -> dict[str, int]:
    """Images with a vector, per model, in one query."""
    rows = (
        ImageEmbedding.objects.filter(model_name__in=list(model_names))
        .values("model_name")
        .annotate(n=Count("image_id", distinct=True))
        .values_list("model_name", "n")
    )
    return {name: 0 for name in model_names} | dict(rows)


def model_missing_image_ids(*, model_name: str, reference: str) -> list[int]:
    """Images that ``reference`` (the active model) has a vector for and ``model_name`` has not:
    what a candidate still lacks. Images nobody could read are in neither, so they do not
    keep a candidate from completing."""
    has = ImageEmbedding.objects.filter(image_id=OuterRef("image_id"), model_name=model_name)
    return list(
        ImageEmbedding.objects.filter(model_name=reference).exclude(Exists(has)).order_by("image_id").values_list("image_id", flat=True)
    )


@dataclass(frozen=True)
class ProductMatch:
    product: Product
    score: float  # cosine similarity in [-1, 1]; 1 is identical
    image_id: int
    also: tuple[Product, ...] = ()  # other listings of the same photo ("also sold by")
    colour_similarity: float | None = None  # 0..1, when the search had a colour term
    same_photo: bool = False  # the query is a copy of this listing's photo (``images_same_photo``)


@dataclass(frozen=True)
class SamePhoto:
    product_id: int
    image_id: int
    score: float  # the duplicate detector's near-copy score, 0..1 (detection.near_copy_score)
    hash_distance: int


# Listings looked at per upload whose photo hashes within reach of it, closest first: a guard
# against one photo re-used by many listings (as the duplicate scan's BAND_CANDIDATES).
SAME_PHOTO_CANDIDATES = 20
# Images sharing a hash band with an upload read at most: 2 for the median consumer photo, 13
# at the 95th percentile, 32 at most (120 photos against the demo's 3,000 fingerprints); a
# photo that shares a band with most of a catalogue (a blank picture) is no copy of one listing.
SAME_PHOTO_BAND_ROWS = 2000


@functools.lru_cache(maxsize=8)
def _same_photo_sqls(dim: int) -> tuple[str, str]:
    """The band lookup (the GIN index; the hashes only) and, for the few within reach, their
    listings and cosines. Two statements rather than one: nearly every upload stops after the
    first (a lookup took 0.4 ms in process against 2.0 ms with one joined statement, which the
    planner also answered with a scan of the whole table; demo catalogue, 2026-12-07)."""
    prints, table, products = ImageFingerprint._meta.db_table, ImageEmbedding._meta.db_table, Product._meta.db_table
    bands = f"SELECT image_id, phash, phash_trim FROM {prints} WHERE bands && %(bands)s::integer[] LIMIT %(limit)s"
    listings = (
        f"SELECT f.image_id, e.product_id, f.colour, "
        f"1 - ({index.vector_cast_sql(dim, 'e.vector')} <=> CAST(%(vector)s AS halfvec({int(dim)}))) "
        f"FROM {prints} f JOIN {table} e ON e.image_id = f.image_id AND e.model_name = %(model)s AND e.dim = %(dim)s "
        f"JOIN {products} p ON p.id = e.product_id AND p.status = %(active)s WHERE f.image_id = ANY(%(ids)s::bigint[])"
    )
    return bands, listings


def images_same_photo(*, fingerprint: Fingerprint, vector: np.ndarray, model_name: str | None = None) -> list[SamePhoto]:
    """The active listings whose photo the query image is a copy of (resized, re-encoded,
    re-cropped in its margin: ``detection.same_photo_ranked``, the duplicate detector's rule),
    most certain first; usually none. ``vector`` is the query's embedding by ``model_name``.
    Candidates come from the hash bands' GIN index, so the cost does not grow with the catalogue."""
    model_name = model_name or active_model_name()
    dim = int(vector.shape[-1])
    bands_sql, listings_sql = _same_photo_sqls(dim)
    with connections[router.db_for_read(ImageFingerprint)].cursor() as cursor:
        cursor.execute(bands_sql, {"bands": fingerprint.bands(), "limit": SAME_PHOTO_BAND_ROWS})
        shared = cursor.fetchall()
        most = DEFAULT_THRESHOLDS.max_hash_distance()
        near = sorted((d, image_id, phash, trim) for image_id, phash, trim in shared
                      if (d := hash_distance(fingerprint, Fingerprint(phash, trim))) <= most)[:SAME_PHOTO_CANDIDATES]
        if not near:
            return []
        cursor.execute(listings_sql, {
            "vector": HalfVector(vector).to_text(), "model": model_name, "dim": dim, "active": Product.Status.ACTIVE,
            "ids": [image_id for _, image_id, _, _ in near],
        })
        found = {image_id: (product_id, colour, float(cosine)) for image_id, product_id, colour, cosine in cursor.fetchall()}
    candidates = [((image_id, found[image_id][0]), Fingerprint(phash, trim, found[image_id][1]), found[image_id][2])
                  for _, image_id, phash, trim in near if image_id in found]
    out, seen = [], set()
    for (image_id, product_id), score, distance in same_photo_ranked(fingerprint, candidates):
        if product_id not in seen:
            seen.add(product_id)
            out.append(SamePhoto(product_id=product_id, image_id=image_id, score=score, hash_distance=distance))
    return out


def _nearest_rows_query(
    *, vector: np.ndarray, dim: int, model_name: str, filters: ProductFilters, exclude: Collection[int], limit: int | None,
    exact: bool = False, passing=None,
):
    """The canonical index rows nearest to ``vector`` whose product, or one of whose exact
    copies' products, passes ``filters``; ordered by the indexed distance. ``exact``: every
    row of the passing products instead, which the partial index does not cover, so the
    planner reads them through the products and sorts them (for filters that leave few).
    ``passing``: ``products_matching(filters)`` when the caller already built it (or a subset
    of it). ``limit`` None: every row."""
    passing = products_matching(filters) if passing is None else passing
    if exclude:
        # One array parameter, whatever the number of ids: the statement's text stays the same
        # for every exclusion, so that it can be compiled once (``_nearest_rows_statement``).
        ids = exclude if isinstance(exclude, list) else sorted(exclude)
        passing = passing.exclude(id__in=RawSQL("SELECT unnest(%s::bigint[])", (ids,)))
    copies = ImageEmbedding.objects.filter(model_name=OuterRef("model_name"), sha256=OuterRef("sha256")).exclude(
        id=OuterRef("id")
    )
    if exact:
        rows = ImageEmbedding.objects.filter(model_name=model_name, dim=int(dim), product__in=passing)
    else:
        rows = ImageEmbedding.objects.filter(index.index_predicate(model_name, dim)).filter(
            Exists(passing.filter(id=OuterRef("product_id")))
            | (~Q(sha256="") & Exists(copies.filter(product__in=passing)))
        )
    return (
        rows
        .annotate(
            distance=index.cosine_distance(dim, vector),
            # Set when other rows hold the same bytes: their products are read separately.
            has_copies=Exists(copies),
        )
        .order_by("distance")
        .values_list("product_id", "image_id", "distance", "sha256", "has_copies")[:limit]
    )


# Compiled search statements kept per process (a few per model and filter combination).
STATEMENT_CACHE_SIZE = 512
_statements: dict[tuple, tuple[float, tuple[str, tuple, tuple[int, ...]] | None, int | None, bool]] = {}


def _nearest_rows_statement(
    model_name: str, dim: int, filters: ProductFilters, limit: int, excluding: bool, *, using: str
) -> tuple[tuple[str, tuple, tuple[int, ...]] | None, int | None, bool]:
    """The compiled search statement without its vector and exclusion: (SQL, the parameters
    after the vector's, the positions among them of the excluded ids' array), or None when
    the vector is not the first parameter (then compile each time); how many active products
    pass ``filters``, counted up to ``exact_search_max_products()`` + 1 (None: no filter);
    and whether that is few enough for the exact statement.

    Building and compiling the ORM query cost 4.6 of a search's 8.5 ms (median of 30 photo
    searches on the demo catalogue, 2026-12-01), and it depends only on these arguments -
    and, with a filter, on the catalogue (the category's descendants' ids are in the
    statement, and how many products pass decides the exact search): those statements are
    rebuilt after ``VISUALSEARCH_SHELVES_TTL`` seconds, as the category shelves are.
    """
    key = (model_name, dim, filters, limit, excluding)
    now = time.monotonic()
    cached = _statement_kept(_statements, key, filters, now)
    if cached is not None:
        return cached[1], cached[2], cached[3]
    passing = products_matching(filters)
    most = exact_search_max_products()
    count = None if filters.is_empty else passing.using(using)[: max(0, most) + 1].count()
    exact = count is not None and count <= most
    probe, excluded_probe = np.zeros(dim, dtype=np.float32), [-1]
    query = _nearest_rows_query(
        vector=probe, dim=dim, model_name=model_name, filters=filters, exclude=excluded_probe if excluding else (), limit=limit,
        exact=exact, passing=passing,
    )
    statement = None
    if count != 0:  # nothing passes: no statement (an empty IN compiles to nothing)
        sql, params = query.query.sql_with_params()
        if params and params[0] == HalfVector(probe).to_text():
            rest = tuple(params[1:])
            slots = tuple(n for n, param in enumerate(rest) if param is excluded_probe)
            if bool(slots) == excluding:
                statement = (sql, rest, slots)
    _statement_keep(_statements, key, (now, statement, count, exact))
    return statement, count, exact


def _statement_kept(cache: dict, key: tuple, filters: ProductFilters, now: float) -> tuple | None:
    """A compiled statement's entry (its first field the time it was compiled), while it is
    valid: for good without a filter, else for ``VISUALSEARCH_SHELVES_TTL`` seconds (the
    category's descendants' ids are in the statement)."""
    cached = cache.get(key)
    if cached is not None and (filters.is_empty or now - cached[0] < settings.VISUALSEARCH_SHELVES_TTL):
        return cached
    return None


def _statement_keep(cache: dict, key: tuple, entry: tuple) -> None:
    if len(cache) >= STATEMENT_CACHE_SIZE:
        cache.clear()
    cache[key] = entry


_copy_statements: dict[tuple, tuple[float, tuple[str, tuple, int, int]]] = {}


def _copies_statement(model_name: str, filters: ProductFilters, *, using: str) -> tuple[str, tuple, int, int]:
    """The compiled query for the listings that hold one of some photos and pass ``filters``,
    less some products: (SQL, its parameters, the positions among them of the photos'
    sha256 array and of the excluded ids' array), kept as ``_nearest_rows_statement`` keeps
    its own. Building it with the ORM for every search cost ~1 ms of the ~4 ms index read
    (demo catalogue, where 3 of 4 photo searches meet a photo listed more than once)."""
    key = (model_name, filters, using)
    now = time.monotonic()
    cached = _statement_kept(_copy_statements, key, filters, now)
    if cached is not None:
        return cached[1]
    photos_probe, excluded_probe = ["-"], [-1]
    passing = products_matching(filters).exclude(id__in=RawSQL("SELECT unnest(%s::bigint[])", (excluded_probe,)))
    query = ImageEmbedding.objects.filter(
        model_name=model_name, sha256__in=RawSQL("SELECT unnest(%s::text[])", (photos_probe,)), product__in=passing
    ).values_list("product_id", "image_id", "sha256")
    sql, params = query.query.sql_with_params()
    slots = {id(param): n for n, param in enumerate(params)}
    statement = (sql, tuple(params), slots[id(photos_probe)], slots[id(excluded_probe)])
    _statement_keep(_copy_statements, key, (now, statement))
    return statement


@dataclass(frozen=True)
class Hit:
    product_id: int
    image_id: int
    score: float  # cosine similarity
    sha256: str | None  # set when other listings hold the same photo (exact copies)


def nearest_hits(
    *,
    vector: np.ndarray,
    k: int,
    filters: ProductFilters | None = None,
    exclude_product_ids: Collection[int] = (),
    model_name: str | None = None,
) -> list[Hit]:
    """The ``k`` nearest products' best images, best first.

    Products whose image is an exact copy of another product's are found through the
    copies' shared (canonical) index row, at the same similarity (their hits carry the
    photo's sha256, so that callers can fold them into one result).

    Runs in its own transaction so that the HNSW search settings (``visualsearch.index``)
    apply to this query only: with a selective filter (a category holding 2% of the
    catalogue) a plain HNSW scan stops after ``ef_search`` candidates and returns fewer
    than ``k`` rows; the iterative scan keeps walking the graph until ``k`` rows pass. A
    filter that leaves few products (``exact_search_max_products``) is searched exactly instead.
    """
    model_name = model_name or active_model_name()
    filters = filters or ProductFilters()
    dim = int(vector.shape[-1])
    limit = math.ceil(k * images_per_product_headroom())
    excluded = sorted(exclude_product_ids)
    # Raw SQL does not pass through the database router: ask it (a read replica when the
    # request allows one, config/replicas.py).
    alias = router.db_for_read(ImageEmbedding)
    statement, count, exact = _nearest_rows_statement(model_name, dim, filters, limit, bool(excluded), using=alias)
    if count == 0:
        return []  # no active product passes the filters
    if statement is not None:
        sql, rest, slots = statement
        params = [HalfVector(vector).to_text(), *(excluded if n in slots else p for n, p in enumerate(rest))]
    else:
        query = _nearest_rows_query(
            vector=vector, dim=dim, model_name=model_name, filters=filters, exclude=exclude_product_ids, limit=limit,
            exact=exact,
        )
        sql, params = query.query.sql_with_params()
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        index.execute_search(cursor, sql, list(params))
        rows = [(pid, iid, float(distance), sha if has_copies else None) for pid, iid, distance, sha, has_copies in cursor.fetchall()]
    shared = {sha: distance for _, _, distance, sha in rows if sha is not None}
    if shared:
        # Every product holding one of those photos and passing the filters, at the same distance.
        sql, params, sha_slot, excluded_slot = _copies_statement(model_name, filters, using=alias)
        params = list(params)
        params[sha_slot], params[excluded_slot] = sorted(shared), excluded
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            copies = cursor.fetchall()
        rows = [row for row in rows if row[3] is None] + [(product_id, image_id, shared[sha], sha) for product_id, image_id, sha in copies]
    # relaxed_order may return rows slightly out of order: sort, then keep each product's best image.
    best: dict[int, Hit] = {}
    for product_id, image_id, distance, sha in sorted(rows, key=lambda r: (r[2], r[0])):
        if product_id not in best:
            best[product_id] = Hit(product_id, image_id, 1.0 - float(distance), sha)
    return list(best.values())[:k]


def _hits_of_products(
    product_ids: Sequence[int], *, vector: np.ndarray, filters: ProductFilters | None, model_name: str | None
) -> list[Hit]:
    """Each of ``product_ids`` that is active and passes ``filters``, as a hit of its image
    nearest to ``vector``: the exact read of ``_nearest_rows_query``, over those products only."""
    if not product_ids:
        return []
    filters = filters or ProductFilters()
    dim = int(vector.shape[-1])
    rows = _nearest_rows_query(
        vector=vector, dim=dim, model_name=model_name or active_model_name(), filters=filters, exclude=(), limit=None,
        exact=True, passing=products_matching(filters).filter(id__in=list(product_ids)),
    )
    best: dict[int, Hit] = {}
    for product_id, image_id, distance, sha, has_copies in rows:
        best.setdefault(product_id, Hit(product_id, image_id, 1.0 - float(distance), sha if has_copies else None))
    return list(best.values())


@functools.lru_cache(maxsize=8)
def _nearest_sql(dim: int) -> str:
    cast = index.vector_cast_sql(dim, "vector")
    query = f"CAST(%(vector)s AS halfvec({int(dim)}))"
    return (
        f"SELECT 1 - ({cast} <=> {query}), product_id FROM {ImageEmbedding._meta.db_table} "
        f"WHERE model_name = %(model)s AND dim = %(dim)s AND is_canonical ORDER BY {cast} <=> {query} LIMIT 1"
    )


def nearest_product(*, vector: np.ndarray, model_name: str | None = None) -> tuple[float, int] | None:
    """(cosine, product id) of the catalogue's nearest image to ``vector`` (None: nothing
    indexed), by one plain index read with the connection's own HNSW settings: 0.75 ms against
    3.1 ms through ``nearest_hits`` (its transaction and settings; 150 consumer photos on the
    demo catalogue, the same answer on both sides of 0.6 for all, 2026-12-07). Approximate, and
    every listing's rows count, hidden or not: for a decision, not for a result list."""
    model_name = model_name or active_model_name()
    dim = int(vector.shape[-1])
    with connections[router.db_for_read(ImageEmbedding)].cursor() as cursor:
        cursor.execute(_nearest_sql(dim), {"vector": HalfVector(vector).to_text(), "model": model_name, "dim": dim})
        row = cursor.fetchone()
    return (float(row[0]), int(row[1])) if row else None


def nearest_product_ids(
    *,
    vector: np.ndarray,
    k: int,
    filters: ProductFilters | None = None,
    exclude_product_ids: Collection[int] = (),
    model_name: str | None = None,
) -> list[tuple[int, int, float]]:
    """(product_id, image_id, cosine similarity) of the ``k`` nearest products, best first."""
    hits = nearest_hits(vector=vector, k=k, filters=filters, exclude_product_ids=exclude_product_ids, model_name=model_name)
    return [(hit.product_id, hit.image_id, hit.score) for hit in hits]


def _fold_copies(hits: Sequence[Hit]) -> list[list[Hit]]:
    """Hits grouped by photo: listings of the same image bytes become one group (the oldest
    listing, the lowest id, first), in the order of their best hit."""
    groups: dict[object, list[Hit]] = {}
    for hit in hits:
        groups.setdefault(hit.sha256 or ("product", hit.product_id), []).append(hit)
    return [sorted(group, key=lambda h: h.product_id) for group in groups.values()]


_FINGERPRINT_COLOURS_SQL = (
    f"SELECT image_id, colour FROM {ImageFingerprint._meta.db_table} WHERE image_id = ANY(%s::bigint[])"
)


@dataclass(frozen=True)
class CategoryTerm:
    """The category classifier's say in a photo search's ranking: ``weight`` times the
    probability of each candidate's category (``prior``: category id -> probability that the
    photo shows one) is added to its cosine, unless the nearest candidate's cosine is ``gate``
    or more: a photo that close to one product is most likely of that product, and a guess of
    its category must not push it down (docs/benchmarks.md, "The category term")."""

    prior: Mapping[int, float]
    weight: float
    gate: float = float("inf")  # no gate


_PRODUCT_CATEGORIES_SQL = f"SELECT id, category_id FROM {Product._meta.db_table} WHERE id = ANY(%s::bigint[])"


def _rows_by_ids(model, sql: str, ids: Sequence[int]) -> list[tuple]:
    """The rows of ``sql`` (one ``%s::bigint[]`` parameter) for ``ids``, on ``model``'s read
    database. Raw SQL for the reads every photo search makes: the ORM's query building was 0.35
    of the colour fingerprints' 0.59 ms read (44 images)."""
    with connections[router.db_for_read(model)].cursor() as cursor:
        cursor.execute(sql, [list(ids)])
        return cursor.fetchall()


def _categories_of(product_ids: Sequence[int]) -> dict[int, int]:
    """Each product's category id."""
    return dict(_rows_by_ids(Product, _PRODUCT_CATEGORIES_SQL, product_ids))


def _colour_similarities(image_ids: Sequence[int], colour: ColourProfile) -> dict[int, float]:
    """Each image's colour similarity to ``colour`` (from its stored fingerprint thumbnail)."""
    rows = _rows_by_ids(ImageFingerprint, _FINGERPRINT_COLOURS_SQL, image_ids)
    profiles = studio_profiles([colour_hex for _, colour_hex in rows])
    return {image_id: colour.similarity(profile) for (image_id, _), profile in zip(rows, profiles, strict=True) if profile is not None}


def product_search_by_vector(
    *,
    vector: np.ndarray,
    k: int,
    filters: ProductFilters | None = None,
    exclude_product_ids: Collection[int] = (),
    model_name: str | None = None,
    colour: ColourProfile | None = None,
    colour_weight: float = 0.0,
    category: CategoryTerm | None = None,
    same_photo: Sequence[int] = (),
) -> list[ProductMatch]:
    """The ``k`` active products nearest to ``vector``, loaded with images, best first.

    Listings of the same photo come as one match (``also``: the other listings). The nearest
    ``k * COLOUR_CANDIDATES_FACTOR`` candidates are re-ranked when the search has a term
    besides the cosine: with ``colour``, ``colour_weight`` times the colour similarity (0..1);
    with ``category``, the category classifier's (``CategoryTerm``). ``same_photo``: products
    whose photo the query is a copy of (``images_same_photo``), most certain first; those
    that pass ``filters`` lead, whatever their cosine.
    """
    colour_term = colour is not None and colour_weight > 0
    category_term = category is not None and category.weight > 0 and bool(category.prior)
    fetch = k * (COLOUR_CANDIDATES_FACTOR if colour_term or category_term else 1) + FOLD_HEADROOM
    hits = nearest_hits(vector=vector, k=fetch, filters=filters, exclude_product_ids=exclude_product_ids, model_name=model_name)
    pinned = {product_id: n for n, product_id in enumerate(p for p in same_photo if p not in exclude_product_ids)}
    if pinned:
        found = {hit.product_id for hit in hits}
        hits += _hits_of_products([p for p in pinned if p not in found], vector=vector, filters=filters, model_name=model_name)
    groups = _fold_copies(hits)
    category_term = category_term and bool(hits) and hits[0].score < category.gate
    reranking = colour_term or category_term
    similarity: dict[int, float] = {}
    if reranking:
        bonus = {g[0].product_id: 0.0 for g in groups}
        if colour_term:
            similarity = _colour_similarities([g[0].image_id for g in groups], colour)
            neutral = float(np.mean(list(similarity.values()))) if similarity else 0.0
            for g in groups:
                bonus[g[0].product_id] += colour_weight * similarity.get(g[0].image_id, neutral)
        if category_term:
            category_of = _categories_of(list(bonus))
            for product_id in bonus:
                bonus[product_id] += category.weight * category.prior.get(category_of.get(product_id), 0.0)
        groups.sort(key=lambda g: -(g[0].score + bonus[g[0].product_id]))
    if pinned:  # a stable sort: the rest keep their order
        groups.sort(key=lambda g: min(pinned.get(h.product_id, len(pinned)) for h in g))
    groups = groups[:k]
    products = {p.id: p for p in product_cards_by_ids(ids=[h.product_id for g in groups for h in g])}
    matches = []
    for group in groups:
        present = [h for h in group if h.product_id in products]
        if present:
            lead = present[0]
            matches.append(ProductMatch(
                product=products[lead.product_id], score=lead.score, image_id=lead.image_id,
                also=tuple(products[h.product_id] for h in present[1:]), colour_similarity=similarity.get(lead.image_id),
                same_photo=any(h.product_id in pinned for h in present),
            ))
    return matches


def product_vectors(*, product_ids: Sequence[int], model_name: str | None = None) -> dict[int, np.ndarray]:
    """Each product's primary-image vector (lowest position) for the model, as float32."""
    model_name = model_name or active_model_name()
    rows = (
        ImageEmbedding.objects.filter(product_id__in=list(product_ids), model_name=model_name)
        .order_by("product_id", "image__position", "image_id")
        .values_list("product_id", "vector")
    )
    vectors: dict[int, np.ndarray] = {}
    for product_id, vector in rows:
        if product_id not in vectors:
            vectors[product_id] = np.asarray(vector.to_numpy(), dtype=np.float32)
    return vectors


@dataclass(frozen=True)
class ModelOverview:
    name: str
    state: str  # an EmbeddingModel.State, or "available" for a model with no registry row
    dim: int | None
    backbone: str
    vectors: int  # images with a vector of this model
    reference: int  # images with a vector of the active model (what "complete" means)
    index_requested_at: object
    index_completed_at: object
    metrics: dict  # hold-out metrics recorded by the lab (metadata.json), newest run
    card: str  # where the model card is, for a shipped model

    @property
    def coverage(self) -> float:
        return self.vectors / self.reference if self.reference else 0.0


def model_overview() -> list[ModelOverview]:
    """Every available embedding model with its state, coverage and hold-out metrics: the
    active one first, then those with vectors, then the rest."""
    from_registry = {row.name: row for row in EmbeddingModel.objects.all()}
    names = list(dict.fromkeys([*available_models(), *from_registry]))
    active = active_model_name()
    counts = model_coverage(model_names=names)
    dims = dict(ImageEmbedding.objects.filter(model_name__in=names).values_list("model_name", "dim").distinct())
    out = []
    for name in names:
        row = from_registry.get(name)
        metadata = model_metadata(name)
        runs = [v for k, v in metadata.get("metrics", {}).items() if k.startswith("holdout_") and "_quick" not in k]
        state = EmbeddingModel.State.ACTIVE if name == active else (row.state if row else "available")
        out.append(ModelOverview(
            name=name, state=state, dim=dims.get(name) or metadata.get("dim"), backbone=metadata.get("backbone", name),
            vectors=counts.get(name, 0), reference=counts.get(active, 0),
            index_requested_at=row.index_requested_at if row else None, index_completed_at=row.index_completed_at if row else None,
            metrics=runs[-1] if runs else {}, card=str(model_card_path(name) or ""),
        ))
    return sorted(out, key=lambda m: (m.state != EmbeddingModel.State.ACTIVE, not m.vectors, m.name))


def model_activations_recent(*, limit: int = 10) -> list[ModelActivation]:
    return list(ModelActivation.objects.select_related("model", "actor").order_by("-at", "-id")[:limit])

"""Similar products, "Recommended for you", "Recently viewed" and "Complete the look", from the image embeddings
of the active model and the visitor's history.

Searches go through ``visualsearch.selectors.nearest_hits`` and ``nearest_product_ids`` (the HNSW index, the
catalogue's filters, hidden products never returned); products are loaded once, at the end,
for the cards that are shown.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connections, router

from recommender import history, outfits
from recommender.models import ProductLook, ProductView, SimilarStrip
from shop.filters import ProductFilters
from shop.models import Category, Product, ProductImage
from shop.selectors import category_nodes, category_path, product_cards_by_ids, product_get_by_ids
from visualsearch.duplicates.selectors import confirmed_duplicate_ids
from visualsearch.models import ImageEmbedding
from visualsearch.selectors import ProductMatch, active_model_name, nearest_hits, nearest_product_ids, product_vectors

logger = logging.getLogger(__name__)

SIMILAR_DEFAULT_K = 12
RECOMMENDED_DEFAULT_K = 12
RECENTLY_VIEWED_DEFAULT_K = 12
# The most recent views that shape "Recommended for you"; older ones have faded.
RECENT_VIEWS_USED = 10
# Interests (viewed categories) kept apart, the most weighty first. With 12 places each of
# four interests gets three; the simulated sessions of ``manage.py evaluate_recommendations``
# view 2 to 4 categories.
MAX_INTERESTS = 4
# A view this many clicks back counts half as much as the latest one (interest weights and
# the mean vector inside an interest).
RECENCY_HALF_LIFE = 3.0
# Candidates read per interest: k plus room for what folding and diversity drop.
CANDIDATE_HEADROOM = 1.5
# Cosine similarity at or above which two products' photos count as near-identical: the same
# photo (1.0), a re-listed copy, or the same cut in the same colour side by side. Measured on
# the demo catalogue with efficientnet_lite0 (docs/benchmarks.md, "Recommendations"): 103 of
# its 4.5M pairs reach 0.97, 94 of them flagged duplicate listings; at 0.95, 300 pairs do,
# among them trousers of one cut in black and in navy, which are worth showing both. A model
# with another similarity scale (the fine-tuned 256-d heads) needs this re-measured.
NEAR_IDENTICAL_SIMILARITY = 0.97
# The precomputed strip of a product (``SimilarStrip``, the default scope) holds the default
# strip's cards and this many spares, so that products hidden since it was computed leave it
# full: a strip reads its 16 cards' products in the same two queries as 12.
SIMILAR_STRIP_SPARE = 4
SIMILAR_STRIP_CARDS = SIMILAR_DEFAULT_K + SIMILAR_STRIP_SPARE
STRIP_SCORE_DIGITS = 4
# Searches per scope when folding exact copies leaves the strip short (a photo listed by
# many merchants fills a search's k rows with copies of one card).
FOLD_ROUNDS = 2


@dataclass(frozen=True)
class Recommendation(ProductMatch):
    """A card: ``product`` (with its images, category and merchant loaded), its similarity
    to the query, the matched image, and the other products whose matched photo is the same
    file (same sha256), shown as "also sold by" instead of cards of their own."""

    # "Recommended for you" only: the category of the interest (a viewed category) it follows.
    interest_category_id: int | None = None


@dataclass(frozen=True)
class SimilarProducts:
    """The similar strip: its cards, and which category they were drawn from.

    ``category`` is None when the strip spans all categories; ``requested_category`` is the
    product's own category when "same category only" was asked. They differ when the product's
    category held fewer than k similar products and the strip fell back to an ancestor.
    """

    matches: list[Recommendation]
    category: Category | None = None
    requested_category: Category | None = None
    k: int = SIMILAR_DEFAULT_K

    @property
    def fell_back(self) -> bool:
        return self.category is not None and self.category != self.requested_category

    @property
    def note(self) -> str:
        if not self.fell_back:
            return ""
        return (
            f"Fewer than {self.k} similar products in {self.requested_category.name}: "
            f"showing {self.category.name} as well."
        )


@dataclass
class _Card:
    product_id: int
    image_id: int
    score: float
    copies: list[int] = field(default_factory=list)
    interest_category_id: int | None = None


def _cards_from_rows(rows) -> list[_Card]:
    """Cards kept as (product id, image id, score, copies' ids) rows: the cached strips' and
    the precomputed ones' (``SimilarStrip.cards``)."""
    return [_Card(product_id=pid, image_id=iid, score=score, copies=list(copies)) for pid, iid, score, copies in rows]


def _recommendations(cards: list[_Card], products: dict[int, Product]) -> list[Recommendation]:
    return [
        Recommendation(
            product=products[card.product_id],
            score=card.score,
            image_id=card.image_id,
            also=tuple(products[pid] for pid in card.copies if pid in products),
            interest_category_id=card.interest_category_id,
        )
        for card in cards
        if card.product_id in products
    ]


def _load(cards: list[_Card]) -> dict[int, Product]:
    """The cards' products and their copies', loaded for cards (with images and merchant): two queries."""
    ids = [pid for card in cards for pid in (card.product_id, *card.copies)]
    return {p.id: p for p in product_cards_by_ids(ids=ids)}


# Similar items ------------------------------------------------------------------------


def _fill_similar(
    *, vector: np.ndarray, k: int, filters: ProductFilters | None, seen: set[int], cards: list[_Card], by_sha: dict[str, _Card],
    model_name: str,
) -> None:
    """Add cards nearest to ``vector`` passing ``filters`` until there are ``k``, folding
    products whose matched photo is the same file into one card (the index's hits name the
    photo's sha256 when other listings hold it: no product is loaded here)."""
    for _ in range(FOLD_ROUNDS):
        need = k - len(cards)
        if need <= 0:
            return
        hits = nearest_hits(vector=vector, k=need, filters=filters, exclude_product_ids=seen, model_name=model_name)
        for hit in hits:
            seen.add(hit.product_id)
            if hit.sha256 and hit.sha256 in by_sha:
                by_sha[hit.sha256].copies.append(hit.product_id)
                continue
            card = _Card(product_id=hit.product_id, image_id=hit.image_id, score=hit.score)
            cards.append(card)
            if hit.sha256:
                by_sha[hit.sha256] = card
        if len(hits) < need:  # the scope holds no more
            return


# The similar strips' cards (ids and scores, not the products) are kept in the cache for
# ``RECOMMENDER_SIMILAR_TTL`` seconds: a hit saved about 7 of the 13 ms of a similar-items
# request in process on the demo catalogue (the product's vector, its confirmed duplicates
# and the HNSW search; 2026-12-06, docs/benchmarks.md "Similar strips cached"), and those
# change only when the catalogue's embeddings do. The products are always loaded fresh, so
# a hidden product never shows and prices are current; what can be stale, for at most the
# TTL, is which neighbours are listed (a product embedded by ``embed_catalog`` appears in
# other strips then; one embedded by the workers at once: ``services.similar_cache_forget``
# on ``images_embedded``).
SIMILAR_CACHE_GENERATION_KEY = "recommender:similar:generation"


def _similar_cache_key(*, model_name: str, product_id: int, k: int, same_category: bool) -> str:
    return f"recommender:similar:{model_name}:{product_id}:{k}:{int(same_category)}"


def _cache_call(method, *args, **kwargs):
    """A cache read or write that fails open: the cache only saves work, so a cache server
    that does not answer (Redis down, 0.5 s socket timeout) costs a computed strip, not a 500."""
    try:
        return method(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any backend's connection or timeout error
        logger.warning("similar-strip cache unavailable: %s: %s", type(exc).__name__, exc)
        return None


def _similar_compute(
    *, product_id: int, vector: np.ndarray, k: int, requested: Category | None, model_name: str
) -> tuple[list[_Card], Category | None]:
    seen = {product_id} | confirmed_duplicate_ids(product_id=product_id)
    cards: list[_Card] = []
    by_sha: dict[str, _Card] = {}
    if requested is None:
        _fill_similar(vector=vector, k=k, filters=None, seen=seen, cards=cards, by_sha=by_sha, model_name=model_name)
        return cards, None
    used = requested
    _fill_similar(vector=vector, k=k, filters=ProductFilters(category=used.slug), seen=seen, cards=cards, by_sha=by_sha, model_name=model_name)
    if len(cards) < k:
        # Ancestors nearest first; one query for the whole path, only on this rarer path.
        for ancestor in reversed(category_path(slug=requested.slug)[:-1]):
            used = ancestor
            _fill_similar(vector=vector, k=k, filters=ProductFilters(category=used.slug), seen=seen, cards=cards, by_sha=by_sha, model_name=model_name)
            if len(cards) >= k:
                break
    return cards, used


def product_similar(*, product: Product, k: int = SIMILAR_DEFAULT_K, same_category: bool = False) -> SimilarProducts:
    """Active products that look most like ``product``, best first, excluding itself and its
    confirmed duplicates; products showing the very same photo fold into one card.

    With ``same_category``, the product's category first; when it holds fewer than ``k``
    similar products, its parent's (then the grandparent's ...) fill the rest of the strip,
    after the category's own, and ``SimilarProducts.category`` says which one was used.
    Empty when the product has no embedding yet (just uploaded, worker not done).

    The default strip (every category, up to ``SIMILAR_DEFAULT_K`` cards) is read from the
    product's precomputed ``SimilarStrip`` when the workers have written one for the active
    model: three queries, no index search. Otherwise a repeated request within
    ``RECOMMENDER_SIMILAR_TTL`` seconds reads the cards from the cache and costs one cache
    read and the two queries that load the products.
    """
    requested = product.category if same_category else None
    model_name = active_model_name()  # once: the product's vector and the searches use the same model
    if settings.RECOMMENDER_SIMILAR_STRIPS and not same_category and k <= SIMILAR_DEFAULT_K:
        kept = _strip_read(product_id=product.id, model_name=model_name, k=k)
        if kept is not None:
            return kept
    ttl = settings.RECOMMENDER_SIMILAR_TTL
    key = _similar_cache_key(model_name=model_name, product_id=product.id, k=k, same_category=same_category)
    generation = None
    if ttl > 0:
        got = _cache_call(cache.get_many, [key, SIMILAR_CACHE_GENERATION_KEY]) or {}
        kept, generation = got.get(key), got.get(SIMILAR_CACHE_GENERATION_KEY)
        if kept is not None and kept[0] == generation:
            _, rows, used_id = kept
            cards = _cards_from_rows(rows)
            used = requested
            if used is not None and used_id != used.id:
                used = next((c for c in category_path(slug=requested.slug) if c.id == used_id), requested)
            return SimilarProducts(matches=_recommendations(cards, _load(cards)), category=used, requested_category=requested, k=k)
    vector = product_vectors(product_ids=[product.id], model_name=model_name).get(product.id)
    if vector is None:
        return SimilarProducts(matches=[], category=requested, requested_category=requested, k=k)
    cards, used = _similar_compute(product_id=product.id, vector=vector, k=k, requested=requested, model_name=model_name)
    if ttl > 0:
        rows = [(c.product_id, c.image_id, c.score, tuple(c.copies)) for c in cards]
        _cache_call(cache.set, key, (generation, rows, used.id if used is not None else None), timeout=ttl)
    return SimilarProducts(matches=_recommendations(cards, _load(cards)), category=used, requested_category=requested, k=k)


def similar_strip_cards(*, product_id: int, vector: np.ndarray, model_name: str) -> list[list]:
    """The cards of ``product_id``'s precomputed strip (``SimilarStrip.cards``): the
    ``SIMILAR_STRIP_CARDS`` nearest products in every category, as ``product_similar``
    computes them, best first. Scores are kept to STRIP_SCORE_DIGITS decimals: a strip row is
    then ~920 bytes instead of ~1,050 (demo catalogue); the API rounds scores to 4 anyway."""
    cards, _ = _similar_compute(
        product_id=product_id, vector=vector, k=SIMILAR_STRIP_CARDS, requested=None, model_name=model_name
    )
    return [[c.product_id, c.image_id, round(c.score, STRIP_SCORE_DIGITS), list(c.copies)] for c in cards]


def _strip_read(*, product_id: int, model_name: str, k: int) -> SimilarProducts | None:
    """The first ``k`` cards of the product's precomputed strip that are still on sale, in
    three queries (the strip, then the products); None when there is no strip of the model,
    or when so many of its products were hidden since that fewer than ``k`` are left."""
    rows = SimilarStrip.objects.filter(product_id=product_id, model_name=model_name).values_list("cards", flat=True)[:1]
    if not rows:
        return None
    cards = _cards_from_rows(rows[0])
    matches = _recommendations(cards, _load(cards))
    if len(matches) < k and len(cards) >= SIMILAR_STRIP_CARDS:
        return None  # the catalogue holds more: search again
    return SimilarProducts(matches=matches[:k], k=k)


# Recommended for you ------------------------------------------------------------------


def _near_identical(*, image_ids: Sequence[int], product_ids: Sequence[int], model_name: str | None = None) -> dict[int, set[int]]:
    """Products whose photos are near-identical (cosine >= ``NEAR_IDENTICAL_SIMILARITY``),
    as neighbours of each other, among the images ``image_ids`` and all images of
    ``product_ids``: one query, the pairwise distances computed in PostgreSQL (a few
    thousand pairs; parsing the vectors into Python instead cost ~0.3 ms each)."""
    if not image_ids:
        return {}
    table = ImageEmbedding._meta.db_table
    sql = (
        f"WITH rows AS (SELECT product_id, dim, vector FROM {table} "
        f"WHERE model_name = %s AND (image_id = ANY(%s) OR product_id = ANY(%s))) "
        f"SELECT DISTINCT a.product_id, b.product_id FROM rows a JOIN rows b "
        f"ON a.product_id < b.product_id AND a.dim = b.dim WHERE (a.vector <=> b.vector) <= %s"
    )
    with connections[router.db_for_read(ImageEmbedding)].cursor() as cursor:  # a replica when allowed
        cursor.execute(sql, [model_name or active_model_name(), list(image_ids), list(product_ids), 1.0 - NEAR_IDENTICAL_SIMILARITY])
        pairs = cursor.fetchall()
    near: dict[int, set[int]] = {}
    for a, b in pairs:
        near.setdefault(a, set()).add(b)
        near.setdefault(b, set()).add(a)
    return near



@dataclass
class _Interest:
    category_id: int
    product_ids: list[int]  # most recent first
    view_weights: list[float]
    weight: float


def _interests(recent: list[int], categories: dict[int, int], vectors: dict[int, np.ndarray]) -> list[_Interest]:
    """Group the recent views (most recent first) by category, weighting each view by recency."""
    grouped: dict[int, _Interest] = {}
    for age, product_id in enumerate(recent):
        if product_id not in vectors or product_id not in categories:
            continue
        weight = 0.5 ** (age / RECENCY_HALF_LIFE)
        interest = grouped.setdefault(categories[product_id], _Interest(categories[product_id], [], [], 0.0))
        interest.product_ids.append(product_id)
        interest.view_weights.append(weight)
        interest.weight += weight
    # Heaviest first; dict order (the most recent first) breaks ties.
    return sorted(grouped.values(), key=lambda i: -i.weight)[:MAX_INTERESTS]


def _unit(vector: np.ndarray) -> np.ndarray | None:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else None


def products_recommended(
    *, viewed_ids: Sequence[int], k: int = RECOMMENDED_DEFAULT_K, exclude_product_ids: Collection[int] = ()
) -> list[Recommendation]:
    """"Recommended for you": products near each of the visitor's recent interests, interleaved.

    ``viewed_ids`` is the visitor's history, oldest first. The ``RECENT_VIEWS_USED`` most
    recent views are grouped by category into interests (a shoe, a shirt and a bag are three:
    the mean of their vectors is near none of them), each weighted by the recency of its views
    (half-life ``RECENCY_HALF_LIFE`` views); each interest is searched on its own (the
    recency-weighted mean of its views' vectors) and the results interleaved so that every
    interest appears among the first places and then in proportion to its weight.
    Diversified: products showing the same photo file fold into one card ("also sold by"),
    and a product whose photo is near-identical (``NEAR_IDENTICAL_SIMILARITY``) to one already
    on the strip, or to one viewed, is left out. Viewed, hidden and ``exclude_product_ids`` products
    never appear.

    Queries: 2 for the views (vectors, categories), one search per interest (at most
    ``MAX_INTERESTS``), 2 for the candidates' photo files and near-identical pairs, 2 to load
    the cards: bounded whatever the length of the history or k.
    """
    recent = list(dict.fromkeys(reversed(list(viewed_ids))))[:RECENT_VIEWS_USED]  # most recent first
    if not recent or k <= 0:
        return []
    model_name = active_model_name()
    vectors = product_vectors(product_ids=recent, model_name=model_name)
    if not vectors:
        return []
    categories = dict(Product.objects.filter(id__in=list(vectors)).values_list("id", "category_id"))
    interests = _interests(recent, categories, vectors)
    if not interests:
        return []
    excluded = set(viewed_ids) | set(exclude_product_ids)
    per_interest = int(np.ceil(k * CANDIDATE_HEADROOM))
    queues: list[list[tuple[int, int, float]]] = []
    for interest in interests:
        query = _unit(np.average(np.stack([vectors[pid] for pid in interest.product_ids]), axis=0, weights=interest.view_weights))
        hits = nearest_product_ids(vector=query, k=per_interest, exclude_product_ids=excluded, model_name=model_name) if query is not None else []
        queues.append(list(reversed(hits)))  # pop() takes the best
    candidates = {pid for queue in queues for pid, _, _ in queue}
    if not candidates:
        return []
    image_ids = sorted({iid for queue in queues for _, iid, _ in queue})
    shas = dict(ProductImage.objects.filter(id__in=image_ids).values_list("id", "sha256"))
    near = _near_identical(image_ids=image_ids, product_ids=list(vectors), model_name=model_name)
    # A candidate near-identical to a product viewed or already on the strip is redundant.
    blocked = {other for pid in vectors for other in near.get(pid, ())}
    cards: list[_Card] = []
    by_sha: dict[str, _Card] = {}
    seen: set[int] = set()

    def take(index: int) -> bool:
        """Put interest ``index``'s best remaining candidate on the strip; False when it has none."""
        queue = queues[index]
        while queue:
            product_id, image_id, score = queue.pop()
            if product_id in seen:
                continue
            seen.add(product_id)
            sha = shas.get(image_id, "")
            if sha and sha in by_sha:
                by_sha[sha].copies.append(product_id)
                continue
            if product_id in blocked:
                continue
            card = _Card(product_id=product_id, image_id=image_id, score=score, interest_category_id=interests[index].category_id)
            cards.append(card)
            if sha:
                by_sha[sha] = card
            blocked.update(near.get(product_id, ()))
            return True
        return False

    # Places: one each, heaviest interest first, then a smooth weighted round robin: each
    # interest's share of the places follows its weight, its places spread out, not in a run.
    weights = [interest.weight for interest in interests]
    alive = set(range(len(interests)))
    for index in range(len(interests)):
        if len(cards) < k and not take(index):
            alive.discard(index)
    credit = dict.fromkeys(alive, 0.0)
    while len(cards) < k and alive:
        total = sum(weights[i] for i in alive)
        for i in alive:
            credit[i] += weights[i]
        index = max(sorted(alive), key=credit.__getitem__)
        credit[index] -= total
        if not take(index):
            alive.discard(index)
    return _recommendations(cards, _load(cards))


# Recently viewed ----------------------------------------------------------------------


def history_viewed_ids(*, user, session) -> list[int]:
    """The visitor's viewed products, oldest first: a signed-in user's rows (one query), an
    anonymous visitor's session (none)."""
    if user is not None and user.is_authenticated:
        newest_first = ProductView.objects.filter(user_id=user.pk).order_by("-viewed_at", "-id").values_list("product_id", flat=True)
        return list(newest_first[: history.MAX_REMEMBERED])[::-1]
    return history.session_viewed_ids(session=session)


def products_recently_viewed(
    *, viewed_ids: Sequence[int], k: int = RECENTLY_VIEWED_DEFAULT_K, exclude_product_ids: Collection[int] = ()
) -> list[Product]:
    """The ``k`` most recently viewed active products, the latest first (two queries)."""
    excluded = set(exclude_product_ids)
    newest_first = [pid for pid in dict.fromkeys(reversed(list(viewed_ids))) if pid not in excluded]
    if not newest_first or k <= 0:
        return []
    # All of them (the history is bounded): hidden ones drop out of the load, the strip stays full.
    return product_get_by_ids(ids=newest_first[: history.MAX_REMEMBERED])[:k]


# Complete the look --------------------------------------------------------------------

# Neighbours searched for a look to borrow when the product's own photo shows nothing else:
# the nearest products of its family that have one (about a third of the demo catalogue
# has a look of its own, so a dozen neighbours nearly always hold one).
LOOK_BORROW_NEIGHBOURS = 12


@dataclass(frozen=True)
class LookGroup:
    """One garment of the look: what it is and the catalogue's products like it."""

    kind: str  # the region's kind in the photo: top, bottom, full_body, shoes, headwear or item
    label: str  # the category it matched, e.g. "Jeans"
    category_slug: str
    box: tuple[int, int, int, int]  # where the garment is in the source product's photo
    photo_size: tuple[int, int]  # that photo's width and height
    matches: list[Recommendation]

    @property
    def thumb_style(self) -> str:
        """CSS that shows just the garment's box of the source photo as a tile's background."""
        width, height = self.photo_size
        left, upper, right, lower = self.box
        bw, bh = max(1, right - left), max(1, lower - upper)
        x = 100 * left / (width - bw) if width > bw else 0
        y = 100 * upper / (height - bh) if height > bh else 0
        return f"background-size: {100 * width / bw:.2f}% {100 * height / bh:.2f}%; background-position: {x:.2f}% {y:.2f}%"


@dataclass(frozen=True)
class CompleteLook:
    """"Complete the look" of a product: garments of its own photo (``source`` is the product)
    or, when its photo shows nothing else, of a similar product's photo (``borrowed``)."""

    groups: list[LookGroup]
    source: Product | None = None  # the product whose photo it comes from, when borrowed
    photo: ProductImage | None = None  # the photo the groups' boxes are in

    @property
    def borrowed(self) -> bool:
        return bool(self.groups) and self.source is not None

    def __bool__(self) -> bool:
        return bool(self.groups)


def _look_groups(
    look: ProductLook, *, product: Product, nodes: dict[int, Category] | None, loaded: dict[int, Product]
) -> list[LookGroup]:
    """The look's regions with their products still active; for a borrowed look (``nodes``
    given) only suggestions of another family than ``product`` and of a suiting gender."""
    own_family = outfits.category_family_id(product.category_id, nodes) if nodes is not None else None
    genders = outfits.genders_suiting(product.gender)
    groups = []
    for region in look.regions:
        matches = []
        for product_id, image_id, score, family in region["suggestions"]:
            match = loaded.get(product_id)
            if match is None or product_id == product.id:
                continue
            if nodes is not None and (family == own_family or (genders is not None and match.gender not in genders)):
                continue
            matches.append(Recommendation(product=match, score=score, image_id=image_id))
        if matches:
            groups.append(LookGroup(kind=region["kind"], label=region["label"], category_slug=region["category"],
                                    box=tuple(region["box"]), photo_size=tuple(region["size"]), matches=matches))
    return groups


def _suggested_ids(looks: Sequence[ProductLook]) -> list[int]:
    return list(dict.fromkeys(s[0] for look in looks for region in look.regions for s in region["suggestions"]))


def product_complete_look(*, product: Product, neighbour_ids: Sequence[int] | None = None) -> CompleteLook:
    """"Complete the look" for ``product``: the other garments its photo shows, each with
    the catalogue's products like it in another category (precomputed by the workers,
    ``services.product_looks_refresh``); hidden products drop out at read time.

    A product whose photo shows nothing else borrows the look of its nearest neighbour in
    the same family (a T-shirt on a hanger borrows the jeans of a similar T-shirt worn by a
    model), keeping the suggestions of another family than its own and of its gender.
    ``neighbour_ids``, nearest first, saves the search when the caller has them (the product
    page's similar strip); otherwise the ``LOOK_BORROW_NEIGHBOURS`` nearest are searched.

    Four queries with a look of its own (``product``'s images loaded); seven when borrowing
    from given neighbours, eleven when searching them.
    """
    model_name = active_model_name()
    neighbours = _look_neighbour_ids(product=product, ids=neighbour_ids or [])
    by_product = _looks_by_product(product_ids=[product.id, *neighbours], model_name=model_name)
    own = by_product.pop(product.id, None)
    if own is not None:
        loaded = {p.id: p for p in product_get_by_ids(ids=_suggested_ids([own]))}
        groups = _look_groups(own, product=product, nodes=None, loaded=loaded)
        if groups:
            return CompleteLook(groups=groups, source=None, photo=product.primary_image)
    if neighbour_ids is None:
        neighbours = _look_neighbour_ids(product=product, ids=_look_neighbours(product=product, model_name=model_name))
        by_product = _looks_by_product(product_ids=neighbours, model_name=model_name)
    if not by_product:
        return CompleteLook(groups=[])
    nodes = category_nodes()
    own_family = outfits.category_family_id(product.category_id, nodes)
    candidates = [
        by_product[pid] for pid in neighbours
        if pid in by_product and outfits.category_family_id(by_product[pid].product.category_id, nodes) == own_family
    ]
    loaded = {p.id: p for p in product_get_by_ids(ids=_suggested_ids(candidates))}
    for look in candidates:
        groups = _look_groups(look, product=product, nodes=nodes, loaded=loaded)
        if groups:
            photo = ProductImage.objects.filter(product_id=look.product_id).order_by("position", "id").first()
            return CompleteLook(groups=groups, source=look.product, photo=photo)
    return CompleteLook(groups=[])


def _look_neighbour_ids(*, product: Product, ids: Sequence[int]) -> list[int]:
    return [pid for pid in dict.fromkeys(ids) if pid != product.id][:LOOK_BORROW_NEIGHBOURS]


def _looks_by_product(*, product_ids: Sequence[int], model_name: str) -> dict[int, ProductLook]:
    if not product_ids:
        return {}
    looks = ProductLook.objects.filter(product_id__in=list(product_ids), model_name=model_name, has_look=True)
    return {look.product_id: look for look in looks.select_related("product__merchant")}


def _look_neighbours(*, product: Product, model_name: str) -> list[int]:
    vector = product_vectors(product_ids=[product.id], model_name=model_name).get(product.id)
    if vector is None:
        return []
    hits = nearest_product_ids(vector=vector, k=LOOK_BORROW_NEIGHBOURS, exclude_product_ids={product.id}, model_name=model_name)
    return [pid for pid, _, _ in hits]

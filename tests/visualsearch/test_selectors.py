"""Visual search selectors against a small catalogue embedded with the real model.

``build_catalogue`` is shared with the API, view and recommender tests.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from PIL import Image

from shop.models import Category, Merchant, Product
from tests.factories import (
    CategoryFactory,
    MerchantFactory,
    ProductFactory,
    ProductImageFactory,
    make_image_bytes,
)
from shop.filters import ProductFilters
from visualsearch.index import embedding_index_ensure
from visualsearch.indexing import images_embed
from visualsearch.photos import BadBox, Box, photo_embed, product_search_by_photo
from visualsearch import photos, selectors
from visualsearch.categories import CategoryDecision
from visualsearch.selectors import CategoryTerm, nearest_hits, product_search_by_vector
from visualsearch.services import embeddings_store

pytestmark = pytest.mark.django_db

IMAGE_SIZE = (64, 80)
DIM = 1280  # efficientnet_lite0
# key: (category, gender, price, merchant, colour, pattern). Colours and patterns differ
# from product to product, so every picture has one clear nearest neighbour: itself.
CATALOGUE = {
    "red_tee": ("tshirts", "men", 499, "northwind", (200, 30, 30), 1),
    "navy_tee": ("tshirts", "women", 699, "northwind", (25, 35, 110), 2),
    "yellow_tee": ("tshirts", "women", 899, "southwind", (235, 200, 40), 3),
    "green_shirt": ("shirts", "men", 1299, "southwind", (40, 140, 60), 4),
    "pink_shirt": ("shirts", "women", 1499, "northwind", (230, 120, 170), 5),
    "black_jeans": ("jeans", "men", 1999, "northwind", (20, 20, 20), 6),
    "blue_jeans": ("jeans", "women", 2199, "southwind", (60, 110, 200), 7),
    "white_sneaker": ("shoes", "unisex", 2999, "northwind", (245, 245, 245), 8),
    "orange_sneaker": ("shoes", "men", 3499, "southwind", (240, 120, 20), 9),
    "purple_sneaker": ("shoes", "women", 3999, "northwind", (120, 40, 150), 1),
}


@dataclass
class Catalogue:
    products: dict[str, Product]
    images: dict[str, bytes]  # each product's picture, as stored
    categories: dict[str, Category]
    merchants: dict[str, Merchant]


def build_catalogue() -> Catalogue:
    """Apparel > Topwear > {Tshirts, Shirts}, Apparel > Bottomwear > Jeans, Footwear > Shoes; embedded."""
    apparel = CategoryFactory(name="Apparel", slug="apparel")
    topwear = CategoryFactory(name="Topwear", slug="apparel-topwear", parent=apparel)
    bottomwear = CategoryFactory(name="Bottomwear", slug="apparel-bottomwear", parent=apparel)
    footwear = CategoryFactory(name="Footwear", slug="footwear")
    categories = {
        "apparel": apparel,
        "topwear": topwear,
        "tshirts": CategoryFactory(name="Tshirts", slug="apparel-topwear-tshirts", parent=topwear),
        "shirts": CategoryFactory(name="Shirts", slug="apparel-topwear-shirts", parent=topwear),
        "jeans": CategoryFactory(name="Jeans", slug="apparel-bottomwear-jeans", parent=bottomwear),
        "footwear": footwear,
        "shoes": CategoryFactory(name="Shoes", slug="footwear-shoes", parent=footwear),
    }
    merchants = {slug: MerchantFactory(name=slug.title(), slug=slug) for slug in ("northwind", "southwind")}
    products, images, image_ids = {}, {}, []
    for key, (category, gender, price, merchant, colour, pattern) in CATALOGUE.items():
        product = ProductFactory(
            title=key.replace("_", " ").title(),
            slug=key.replace("_", "-"),
            category=categories[category],
            gender=gender,
            price=Decimal(price),
            merchant=merchants[merchant],
        )
        data = make_image_bytes(colour=colour, pattern=pattern, size=IMAGE_SIZE)
        image_ids.append(ProductImageFactory(product=product, data=data).id)
        products[key], images[key] = product, data
    assert images_embed(image_ids=image_ids).embedded == len(image_ids)
    return Catalogue(products=products, images=images, categories=categories, merchants=merchants)


def side_by_side(left: bytes, right: bytes, *, fmt: str = "PNG", margin: int = 0) -> bytes:
    """One picture holding two catalogue pictures, left and right (a two-piece outfit), on
    white with ``margin`` pixels around and between them (a flat-lay)."""
    a, b = Image.open(io.BytesIO(left)), Image.open(io.BytesIO(right))
    canvas = Image.new("RGB", (a.width + b.width + 3 * margin, max(a.height, b.height) + 2 * margin), "white")
    canvas.paste(a, (margin, margin))
    canvas.paste(b, (a.width + 2 * margin, margin))
    buffer = io.BytesIO()
    canvas.save(buffer, format=fmt)
    return buffer.getvalue()


def pil(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.fixture(scope="module")
def shared_catalogue(django_db_setup, django_db_blocker) -> Iterator[Catalogue]:
    """One embedded catalogue per test module (embedding is the slow part), like Django's
    TestCase.setUpTestData: built in an outer transaction that each test's own transaction
    nests in as a savepoint, and rolled back after the module's last test. Tests change it
    with queryset updates, never by saving these instances, so no test sees another's edits.
    """
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_catalogue()
        transaction.set_rollback(True)


@pytest.fixture
def catalogue(shared_catalogue, db) -> Catalogue:
    return shared_catalogue


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def keys_of(matches, catalogue: Catalogue) -> list[str]:
    by_id = {p.id: key for key, p in catalogue.products.items()}
    return [by_id[m.product.id] for m in matches]


def test_identical_picture_comes_first_with_a_near_perfect_score(catalogue):
    matches = product_search_by_photo(image=pil(catalogue.images["green_shirt"]), k=5)
    assert keys_of(matches, catalogue)[0] == "green_shirt"
    assert matches[0].score > 0.99
    assert len(matches) == 5
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)


def test_the_box_picks_one_piece_of_the_photo(catalogue):
    outfit = pil(side_by_side(catalogue.images["navy_tee"], catalogue.images["orange_sneaker"]))
    width, height = IMAGE_SIZE
    right = product_search_by_photo(image=outfit, k=3, box=Box(x=width, y=0, w=width, h=height))
    left = product_search_by_photo(image=outfit, k=3, box=Box(x=0, y=0, w=width, h=height))
    assert keys_of(right, catalogue)[0] == "orange_sneaker"
    assert keys_of(left, catalogue)[0] == "navy_tee"


def test_a_box_outside_the_photo_is_refused(catalogue):
    with pytest.raises(BadBox):
        product_search_by_photo(image=pil(catalogue.images["red_tee"]), k=3, box=Box(x=500, y=500, w=50, h=50))


FILTER_CASES = [
    # A parent category matches its descendants' products.
    (ProductFilters(category="apparel-topwear"), {"red_tee", "navy_tee", "yellow_tee", "green_shirt", "pink_shirt"}),
    (ProductFilters(category="footwear"), {"white_sneaker", "orange_sneaker", "purple_sneaker"}),
    (ProductFilters(category="apparel-bottomwear-jeans"), {"black_jeans", "blue_jeans"}),
    (ProductFilters(gender="women"), {"navy_tee", "yellow_tee", "pink_shirt", "blue_jeans", "purple_sneaker"}),
    (ProductFilters(min_price=Decimal("1000"), max_price=Decimal("2199")), {"green_shirt", "pink_shirt", "black_jeans", "blue_jeans"}),
    (ProductFilters(min_price=Decimal("3000")), {"orange_sneaker", "purple_sneaker"}),
    (ProductFilters(merchant="southwind"), {"yellow_tee", "green_shirt", "blue_jeans", "orange_sneaker"}),
    (ProductFilters(category="apparel", gender="men", max_price=Decimal("1500")), {"red_tee", "green_shirt"}),
    (ProductFilters(category="no-such-category"), set()),
    (ProductFilters(merchant="no-such-merchant"), set()),
]


def test_each_filter_restricts_the_results(catalogue):
    # The photo is embedded once: what is under test is the filtering.
    query = photo_embed(image=pil(catalogue.images["red_tee"]))
    for filters, expected in FILTER_CASES:
        matches = product_search_by_vector(vector=query, k=20, filters=filters)
        assert set(keys_of(matches, catalogue)) == expected, filters


def test_the_compiled_statement_answers_as_a_fresh_compile(catalogue, monkeypatch):
    """Searches reuse one compiled statement per model, filters, k and whether ids are
    excluded; every filter and exclusion must give what compiling the query afresh gives."""
    query = photo_embed(image=pil(catalogue.images["red_tee"]))
    products = catalogue.products
    exclusions = [set(), {products["navy_tee"].id}, {products["navy_tee"].id, products["green_shirt"].id, products["blue_jeans"].id}]
    cached = {}
    for filters, _ in FILTER_CASES:
        for excluded in exclusions:
            hits = nearest_hits(vector=query, k=6, filters=filters, exclude_product_ids=excluded)
            assert not {h.product_id for h in hits} & excluded
            cached[(filters, frozenset(excluded))] = [(h.product_id, round(h.score, 5)) for h in hits]
    assert any(statement is not None for _, statement, _, _ in selectors._statements.values())
    compiled = selectors._nearest_rows_statement
    # Compile every time (keeping the count of passing products and whether it picks the exact search).
    monkeypatch.setattr(selectors, "_nearest_rows_statement", lambda *args, **kwargs: (None, *compiled(*args, **kwargs)[1:]))
    for (filters, excluded), expected in cached.items():
        hits = nearest_hits(vector=query, k=6, filters=filters, exclude_product_ids=excluded)
        assert [(h.product_id, round(h.score, 5)) for h in hits] == expected, (filters, excluded)


def test_a_category_statement_sees_a_new_subcategory_after_the_shelves_ttl(catalogue, settings):
    settings.VISUALSEARCH_SHELVES_TTL = 0  # as in tests; 60 s in production, as the shelves
    query = photo_embed(image=pil(catalogue.images["red_tee"]))
    before = nearest_hits(vector=query, k=20, filters=ProductFilters(category="apparel-bottomwear"))
    shorts = CategoryFactory(name="Shorts", slug="apparel-bottomwear-shorts", parent=catalogue.categories["jeans"].parent)
    Product.objects.filter(id=catalogue.products["red_tee"].id).update(category=shorts)
    after = nearest_hits(vector=query, k=20, filters=ProductFilters(category="apparel-bottomwear"))
    assert catalogue.products["red_tee"].id not in {h.product_id for h in before}
    assert catalogue.products["red_tee"].id in {h.product_id for h in after}


def test_hidden_products_are_never_returned(catalogue):
    Product.objects.filter(id=catalogue.products["pink_shirt"].id).update(status=Product.Status.HIDDEN)
    matches = product_search_by_photo(image=pil(catalogue.images["pink_shirt"]), k=20)
    assert "pink_shirt" not in keys_of(matches, catalogue)
    assert len(matches) == len(CATALOGUE) - 1


def test_a_selective_filter_still_fills_k_through_the_iterative_index_scan(settings):
    """3 of 64 products (under 5%) are shoes, and all 61 others are nearer the query.

    A plain HNSW scan returns its ``ef_search`` nearest candidates and filters those: no
    shoes. pgvector's iterative scan keeps walking the graph until k rows pass the filter.
    The vectors are made up (stored through the real service) so that the shoes are
    guaranteed to lie beyond the first candidates; embedding 64 photos would only be slower.
    """
    settings.VISUALSEARCH_HNSW_EF_SEARCH = 10
    apparel, shoes = CategoryFactory(slug="scan-apparel"), CategoryFactory(slug="scan-shoes")
    rng = np.random.default_rng(7)
    query = unit(rng.normal(size=DIM))
    images, vectors = [], []
    for i in range(64):
        is_shoe = i % 21 == 20
        # Distinct bytes per image (the colour), as real listings' photos would be.
        image = ProductImageFactory(product=ProductFactory(category=shoes if is_shoe else apparel), colour=(i * 3, 60, 90))
        # Apparel lies close to the query (cosine ~0.96), shoes further out (~0.55): behind
        # every other product, yet not so far out that the graph has no edge to them.
        spread = 1.5 if is_shoe else 0.3
        images.append(image)
        vectors.append(unit(query + spread * unit(rng.normal(size=DIM))))
    embeddings_store(images=images, vectors=np.stack(vectors), model_name=settings.VISUALSEARCH_MODEL)
    embedding_index_ensure(model_name=settings.VISUALSEARCH_MODEL, dim=DIM)
    with connection.cursor() as cursor:
        # The table is tiny: make the planner use the HNSW index, as it would on a real catalogue.
        # (A session setting, undone when the test's transaction rolls back.)
        cursor.execute("SET enable_seqscan = off")
    matches = product_search_by_vector(vector=query, k=3, filters=ProductFilters(category="scan-shoes"))
    assert sorted(m.product.id for m in matches) == sorted(
        img.product_id for img, vector in zip(images, vectors) if img.product.category_id == shoes.id
    )


def test_the_category_term_promotes_the_guessed_category_among_the_candidates(catalogue):
    """The classifier's probability of each candidate's category, times the weight, is added
    to the cosine: a confident "jeans" lifts the jeans above nearer T-shirts; no weight, an
    empty prior or a category the prior does not name leaves the plain order."""
    query = photo_embed(image=pil(catalogue.images["red_tee"]))
    plain = keys_of(product_search_by_vector(vector=query, k=6), catalogue)
    jeans = catalogue.categories["jeans"].id
    prior = {jeans: 0.9, catalogue.categories["tshirts"].id: 0.1}
    lifted = keys_of(product_search_by_vector(vector=query, k=6, category=CategoryTerm(prior, 1.0)), catalogue)
    assert plain[0] == "red_tee" and set(lifted[:2]) == {"black_jeans", "blue_jeans"}
    assert sorted(lifted) != lifted and set(lifted) <= set(CATALOGUE)
    for prior, weight in [(prior, 0.0), ({}, 1.0), ({catalogue.categories["apparel"].id: 1.0}, 1.0)]:
        same = keys_of(product_search_by_vector(vector=query, k=6, category=CategoryTerm(prior, weight)), catalogue)
        assert same == plain, (prior, weight)


def test_the_category_term_leaves_a_photo_of_one_product_alone(catalogue):
    """At or above the gate the nearest candidate is most likely the photographed product
    itself: the guess of its category does not reorder anything, however sure."""
    query = photo_embed(image=pil(catalogue.images["red_tee"]))
    plain = product_search_by_vector(vector=query, k=6)
    prior = {catalogue.categories["jeans"].id: 1.0}
    nearest = plain[0].score
    gated = product_search_by_vector(vector=query, k=6, category=CategoryTerm(prior, 1.0, gate=nearest))
    open_ = product_search_by_vector(vector=query, k=6, category=CategoryTerm(prior, 1.0, gate=nearest + 1e-3))
    assert keys_of(gated, catalogue) == keys_of(plain, catalogue)
    assert keys_of(open_, catalogue)[0] in {"black_jeans", "blue_jeans"}


def test_the_category_term_reads_the_candidates_categories_in_one_query(catalogue):
    query = photo_embed(image=pil(catalogue.images["red_tee"]))
    prior = {catalogue.categories["jeans"].id: 0.9}
    product_search_by_vector(vector=query, k=6)  # statements compiled, estimates read
    product_search_by_vector(vector=query, k=6, category=CategoryTerm(prior, 1.0))
    with CaptureQueriesContext(connection) as plain:
        product_search_by_vector(vector=query, k=6)
    with CaptureQueriesContext(connection) as weighted:
        product_search_by_vector(vector=query, k=6, category=CategoryTerm(prior, 1.0))
    def categories_read(context) -> int:
        return sum("SELECT id, category_id" in q["sql"] for q in context.captured_queries)

    assert len(weighted.captured_queries) == len(plain.captured_queries) + 1
    assert (categories_read(plain), categories_read(weighted)) == (0, 1)


def test_a_photo_search_adds_the_category_term_only_while_it_guesses_the_category(catalogue, monkeypatch):
    """The model's measured category weight applies to the classifier's guess; a category the
    shopper chose, or "any category" (auto_category off), searches without it."""
    monkeypatch.setattr(photos, "search_settings", lambda name: photos.SearchSettings(
        colour_weight=0.0, relevance_floor=-1.0, category_weight=1.0, category_gate=2.0))
    guess = CategoryDecision(guesses=[], source="classifier", threshold=0.9, applied=None, prior={catalogue.categories["jeans"].id: 0.9})
    monkeypatch.setattr(photos, "category_decide", lambda **kwargs: guess)
    query = photo_embed(image=pil(catalogue.images["red_tee"]))
    model = selectors.active_model_name()

    def search(**kwargs) -> list[str]:
        return keys_of(photos.photo_search(vector=query, colour=None, k=4, model_name=model, **kwargs).matches, catalogue)

    assert set(search()[:2]) == {"black_jeans", "blue_jeans"}
    assert search(auto_category=False)[0] == "red_tee"
    # "Apparel" holds the jeans too: with the term they would lead.
    assert search(filters=ProductFilters(category="apparel"))[0] == "red_tee"


def test_a_confident_guess_does_not_narrow_away_the_product_a_photo_is_of(catalogue, monkeypatch):
    """Below the model's narrowing gate a confident guess narrows the search (a wrong one
    leaves the photographed product out); at or above it, the photo is most likely of its
    nearest product, and the search stays whole. Deciding costs one index read."""
    jeans = catalogue.categories["jeans"]
    wrong = CategoryDecision(guesses=[], source="classifier", threshold=0.5, applied=jeans, prior={jeans.id: 0.95})
    monkeypatch.setattr(photos, "category_decide", lambda **kwargs: wrong)
    model = selectors.active_model_name()
    tee = photo_embed(image=pil(catalogue.images["red_tee"]))  # the T-shirt's own picture: cosine 1.0
    blend = unit(tee + photo_embed(image=pil(catalogue.images["white_sneaker"])))  # near nothing in particular

    def search(vector, narrow_gate: float):
        monkeypatch.setattr(photos, "search_settings", lambda name: photos.SearchSettings(
            colour_weight=0.0, relevance_floor=-1.0, narrow_gate=narrow_gate))
        with CaptureQueriesContext(connection) as context:
            outcome = photos.photo_search(vector=vector, colour=None, k=3, model_name=model)
        return outcome, len(context.captured_queries)

    narrowed, _ = search(tee, float("inf"))
    assert set(keys_of(narrowed.matches, catalogue)) == {"black_jeans", "blue_jeans"} and narrowed.category.applied == jeans
    kept, _ = search(tee, 0.9)
    assert keys_of(kept.matches, catalogue)[0] == "red_tee" and kept.category.applied is None
    assert float(blend @ tee) < 0.99
    search(blend, 0.99)  # statements compiled
    always, reads_always = search(blend, float("inf"))
    gated, reads_gated = search(blend, 0.99)
    assert gated.category.applied == jeans and keys_of(gated.matches, catalogue) == keys_of(always.matches, catalogue)
    assert reads_gated == reads_always + 1  # one plain index read
    score, product_id = selectors.nearest_product(vector=tee, model_name=model)
    assert score == pytest.approx(1.0, abs=1e-3) and product_id == catalogue.products["red_tee"].id

    # A right guess narrows even above the gate: the photographed product is inside it, and
    # only the other categories leave the list.
    tees = catalogue.products["red_tee"].category
    right = CategoryDecision(guesses=[], source="classifier", threshold=0.5, applied=tees, prior={tees.id: 0.95})
    monkeypatch.setattr(photos, "category_decide", lambda **kwargs: right)
    inside, _ = search(tee, 0.9)
    assert inside.category.applied == tees and keys_of(inside.matches, catalogue)[0] == "red_tee"
    assert all(catalogue.products[key].category == tees for key in keys_of(inside.matches, catalogue))


def test_a_small_guessed_category_is_widened_by_the_next_guesses_before_its_parent(catalogue, monkeypatch):
    """A guess holding too few products for a page takes the next guesses (the classifier's
    likeliest, whatever their probability) in order until together they hold enough; only when they cannot, the tree's
    parent, as before. The search then shows those categories only."""
    from visualsearch.categories import CategoryGuess, category_holds_product, narrowing_scope, shelves_forget

    shelves_forget()
    c = catalogue.categories
    guesses = [CategoryGuess(c["jeans"], 0.7), CategoryGuess(c["shirts"], 0.2), CategoryGuess(c["tshirts"], 0.1)]
    assert narrowing_scope(guesses, min_products=4) == (c["jeans"], (c["jeans"], c["shirts"]))  # 2 + 2 products
    assert narrowing_scope(guesses, min_products=2) == (c["jeans"], (c["jeans"],))  # big enough alone
    assert narrowing_scope(guesses, min_products=7)[1] == (c["jeans"], c["shirts"], c["tshirts"])  # 2 + 2 + 3
    assert narrowing_scope(guesses, min_products=8) == (c["apparel"], (c["apparel"],))  # 7 < 8: the tree
    assert narrowing_scope(guesses[:1], min_products=4) == (c["apparel"], (c["apparel"],))  # Bottomwear holds 2

    decision = CategoryDecision(guesses=guesses, source="classifier", threshold=0.5, applied=c["jeans"],
                                prior={}, scope=(c["jeans"], c["shirts"]))
    assert decision.scope_label == "Jeans and Shirts"
    assert CategoryDecision(guesses=[], source="classifier", threshold=0.5, applied=c["jeans"]).scope == (c["jeans"],)
    assert category_holds_product(decision.scope, product_id=catalogue.products["pink_shirt"].id)
    assert not category_holds_product(decision.scope, product_id=catalogue.products["red_tee"].id)

    monkeypatch.setattr(photos, "category_decide", lambda **kwargs: decision)
    monkeypatch.setattr(photos, "search_settings", lambda name: photos.SearchSettings(
        colour_weight=0.0, relevance_floor=-1.0, narrow_gate=2.0))
    tee = photo_embed(image=pil(catalogue.images["red_tee"]))
    found = keys_of(photos.photo_search(vector=tee, colour=None, k=6, model_name=selectors.active_model_name()).matches, catalogue)
    assert sorted(found) == ["black_jeans", "blue_jeans", "green_shirt", "pink_shirt"]


def test_filters_of_several_categories_pass_any_of_them():
    from shop.filters import product_filter_q
    from shop.models import Product as P

    topwear = CategoryFactory(name="Topwear", slug="tw")
    tees = CategoryFactory(name="Tees", slug="tw-tees", parent=topwear)
    jeans = CategoryFactory(name="Jeans", slug="jeans")
    shoes = CategoryFactory(name="Shoes", slug="shoes")
    made = {slug: ProductFactory(category=cat).id for slug, cat in (("tee", tees), ("jeans", jeans), ("shoes", shoes))}

    def passing(**kwargs) -> set[int]:
        return set(P.objects.filter(product_filter_q(ProductFilters(**kwargs))).values_list("id", flat=True))

    assert passing(categories=("tw", "jeans")) == {made["tee"], made["jeans"]}  # descendants count
    assert passing(categories=("nope",)) == set()  # an unknown slug matches nothing
    assert passing(categories=("jeans",), category="tw") == set()  # both must hold
    assert ProductFilters.from_values({"category": ""}).is_empty

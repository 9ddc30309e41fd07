"""Complete the look: reading stored looks (own and borrowed), the sweep's choice of stale
looks, the refresh service on photos without a person, the wiring from embedding to the
task, the API and the product page.

Vectors are made here (``tests/recommender/interests.py``'s geometry), so that which
neighbour a product borrows from is known; looks are written as the workers store them.
The real photos (a model in a T-shirt and jeans) are in tests/e2e/test_complete_the_look.py.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import numpy as np
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from recommender import outfits
from recommender.models import ProductLook
from recommender.selectors import LookGroup, product_complete_look
from recommender.services import looks_stale_product_ids, looks_sweep, product_looks_refresh
from shop.models import Product
from shop.selectors import category_nodes, product_get
from tests.factories import CategoryFactory, MerchantFactory, ProductFactory, ProductImageFactory
from tests.recommender.interests import unit
from visualsearch import events
from visualsearch.indexing import images_embed
from visualsearch.selectors import product_vectors
from visualsearch.services import embeddings_store

pytestmark = pytest.mark.django_db

DIM = 32


@pytest.fixture
def shop():
    """Apparel > {Topwear > Tshirts, Bottomwear > {Jeans, Shorts}}, Footwear > Shoes > Sneakers.
    T-shirts around one centre, jeans around another, sneakers a third."""
    rng = np.random.default_rng(7)
    apparel = CategoryFactory(name="Apparel", slug="apparel")
    topwear = CategoryFactory(name="Topwear", slug="apparel-topwear", parent=apparel)
    bottomwear = CategoryFactory(name="Bottomwear", slug="apparel-bottomwear", parent=apparel)
    footwear = CategoryFactory(name="Footwear", slug="footwear")
    shoes = CategoryFactory(name="Shoes", slug="footwear-shoes", parent=footwear)
    cats = {
        "tshirts": CategoryFactory(name="Tshirts", slug="apparel-topwear-tshirts", parent=topwear),
        "jeans": CategoryFactory(name="Jeans", slug="apparel-bottomwear-jeans", parent=bottomwear),
        "sneakers": CategoryFactory(name="Sneakers", slug="footwear-shoes-sneakers", parent=shoes),
    }
    centres = {key: unit(rng.normal(size=DIM)) for key in cats}
    MerchantFactory(name="Northwind")
    products: dict[str, Product] = {}

    def add(key: str, category: str, *, gender=Product.Gender.MEN, near: np.ndarray | None = None, spread: float = 0.4):
        product = ProductFactory(title=key, slug=key, category=cats[category], gender=gender)
        image = ProductImageFactory(product=product)
        vector = (near if near is not None else centres[category]) + spread * unit(rng.normal(size=DIM))
        embeddings_store(images=[image], vectors=unit(vector)[None, :], model_name=settings.VISUALSEARCH_MODEL)
        products[key] = product
        return product

    for i in range(3):
        add(f"tee{i}", "tshirts")
    for i in range(4):
        add(f"jeans{i}", "jeans")
    add("womens_jeans", "jeans", gender=Product.Gender.WOMEN)
    for i in range(2):
        add(f"sneaker{i}", "sneakers")
    nodes = category_nodes()
    return {"products": products, "cats": cats, "nodes": nodes, "families": {
        key: outfits.category_family_id(cat.id, nodes) for key, cat in cats.items()}}


def store_look(product: Product, *, suggestions: list[Product], family: int, label="Jeans", category="apparel-bottomwear-jeans",
               model_name: str | None = None, computed_at=None) -> ProductLook:
    image = product.images.order_by("position", "id").first()
    regions = [{
        "kind": "bottom", "box": [10, 40, 50, 80], "size": [64, 80], "category": category, "label": label, "probability": 0.9,
        "suggestions": [[p.id, p.images.first().id, 0.9 - n / 100, family] for n, p in enumerate(suggestions)],
    }] if suggestions else []
    assert image is not None
    return ProductLook.objects.create(
        product=product, model_name=model_name or settings.VISUALSEARCH_MODEL, regions=regions, has_look=bool(regions),
        computed_at=computed_at or timezone.now(),
    )


def titles(look) -> list[list[str]]:
    return [[m.product.title for m in group.matches] for group in look.groups]


# Units -------------------------------------------------------------------------------


def test_a_categorys_family_is_its_ancestor_under_a_root(shop):
    nodes, cats = shop["nodes"], shop["cats"]
    tshirts = cats["tshirts"]
    assert outfits.category_family_id(tshirts.id, nodes) == tshirts.parent_id  # Topwear
    assert outfits.category_family_id(tshirts.parent_id, nodes) == tshirts.parent_id
    root = nodes[tshirts.parent_id].parent_id
    assert outfits.category_family_id(root, nodes) == root
    assert shop["families"]["jeans"] != shop["families"]["tshirts"]


def test_genders_that_suit_a_product():
    assert outfits.genders_suiting(Product.Gender.MEN) == {Product.Gender.MEN, Product.Gender.UNISEX}
    assert outfits.genders_suiting("") is None  # unlabelled: anything goes


def test_a_groups_tile_shows_just_its_box_of_the_photo():
    group = LookGroup(kind="bottom", label="Jeans", category_slug="jeans", box=(50, 100, 150, 200), photo_size=(200, 200), matches=[])
    # The box is half the photo each way: the background doubles, and sits at the box's corner.
    assert group.thumb_style == "background-size: 200.00% 200.00%; background-position: 50.00% 100.00%"


# Reading -----------------------------------------------------------------------------


def test_a_product_with_a_look_of_its_own(shop, django_assert_max_num_queries):
    p = shop["products"]
    store_look(p["tee0"], suggestions=[p["jeans2"], p["jeans0"], p["jeans1"]], family=shop["families"]["jeans"])
    Product.objects.filter(id=p["jeans0"].id).update(status=Product.Status.HIDDEN)
    tee = product_get(slug="tee0")
    # The active model (cached for seconds in production, not in tests), the look, the
    # suggested products and their images.
    with django_assert_max_num_queries(4):
        look = product_complete_look(product=tee)
    assert look and not look.borrowed and look.source is None
    assert titles(look) == [["jeans2", "jeans1"]]  # stored order; the hidden one drops out
    group = look.groups[0]
    assert (group.kind, group.label, group.category_slug, group.box) == ("bottom", "Jeans", "apparel-bottomwear-jeans", (10, 40, 50, 80))
    assert look.photo == tee.primary_image


def test_a_product_without_one_borrows_from_its_nearest_neighbour_of_its_family(shop, django_assert_max_num_queries):
    p, fam = shop["products"], shop["families"]
    store_look(p["tee1"], suggestions=[p["womens_jeans"], p["jeans3"], p["jeans1"]], family=fam["jeans"])
    store_look(p["tee0"], suggestions=[], family=fam["jeans"])  # its photo shows nothing else
    tee = product_get(slug="tee0")
    # The active model, the product's look, its vector, the neighbours (a savepoint around
    # the HNSW search, and the listings sharing a photo), their looks, the category tree, the
    # suggested products and their images, the source's photo: a bound that does not grow
    # with the catalogue.
    with django_assert_max_num_queries(12):
        look = product_complete_look(product=tee)
    assert look.borrowed and look.source == p["tee1"]
    assert titles(look) == [["jeans3", "jeans1"]]  # the men's tee: not the women's pair
    assert look.photo == p["tee1"].images.first()
    # With the neighbours given (the product page passes its similar strip's), no search.
    with django_assert_max_num_queries(7):
        given = product_complete_look(product=tee, neighbour_ids=[p["sneaker0"].id, p["tee1"].id, p["tee2"].id])
    assert given.source == p["tee1"] and titles(given) == titles(look)


def test_a_neighbour_of_another_family_is_not_borrowed_from(shop):
    p, fam, products = shop["products"], shop["families"], shop["products"]
    # A sneaker whose photo lies among the T-shirts' (nearer to tee0 than any tee), with a look.
    tee0_vector = product_vectors(product_ids=[p["tee0"].id])[p["tee0"].id]
    sneaker = ProductFactory(title="odd_sneaker", slug="odd-sneaker", category=shop["cats"]["sneakers"])
    image = ProductImageFactory(product=sneaker)
    embeddings_store(images=[image], vectors=tee0_vector[None, :], model_name=settings.VISUALSEARCH_MODEL)
    store_look(sneaker, suggestions=[products["jeans0"]], family=fam["jeans"])
    assert not product_complete_look(product=p["tee0"])
    store_look(p["tee2"], suggestions=[products["jeans2"]], family=fam["jeans"])
    look = product_complete_look(product=p["tee0"])
    assert look.source == p["tee2"] and titles(look) == [["jeans2"]]


def test_suggestions_in_the_borrowers_own_family_are_dropped(shop):
    p, fam = shop["products"], shop["families"]
    # tee1's look as stored before a re-categorisation: its "jeans" are now T-shirts' family.
    store_look(p["tee1"], suggestions=[p["jeans0"]], family=fam["tshirts"])
    assert not product_complete_look(product=p["tee0"])


def test_no_look_without_an_embedding_or_from_another_model(shop):
    p, fam = shop["products"], shop["families"]
    store_look(p["tee1"], suggestions=[p["jeans0"]], family=fam["jeans"], model_name="another-model")
    store_look(p["tee2"], suggestions=[p["jeans1"]], family=fam["jeans"], model_name="another-model")
    assert not product_complete_look(product=p["tee0"])  # only looks of the active model count
    bare = ProductFactory(title="new", slug="new", category=shop["cats"]["tshirts"])
    assert not product_complete_look(product=bare)  # not embedded yet


# Writing -----------------------------------------------------------------------------


def test_the_sweep_picks_missing_then_outdated_looks(shop):
    p, fam = shop["products"], shop["families"]
    store_look(p["tee0"], suggestions=[p["jeans0"]], family=fam["jeans"])  # fresh
    store_look(p["tee1"], suggestions=[], family=fam["jeans"], model_name="another-model")
    store_look(p["tee2"], suggestions=[], family=fam["jeans"], computed_at=timezone.now() - outfits.LOOK_MAX_AGE - timedelta(hours=1))
    Product.objects.filter(id=p["jeans3"].id).update(status=Product.Status.HIDDEN)
    ProductFactory(title="unembedded", slug="unembedded", category=shop["cats"]["tshirts"])
    stale = looks_stale_product_ids(limit=100)
    never = {p[k].id for k in ("jeans0", "jeans1", "jeans2", "womens_jeans", "sneaker0", "sneaker1")}
    assert set(stale[: len(never)]) == never  # never computed first
    assert set(stale[len(never):]) == {p["tee1"].id, p["tee2"].id}
    assert looks_stale_product_ids(limit=2) == sorted(never)[:2]


def test_refreshing_a_photo_without_a_person_records_that_it_has_no_look(shop):
    p = shop["products"]
    assert looks_sweep(batch_size=3) == 3
    assert product_looks_refresh(product_ids=[p["tee0"].id, p["tee0"].id]) == 1
    look = ProductLook.objects.get(product=p["tee0"])
    assert (look.regions, look.has_look, look.model_name) == ([], False, settings.VISUALSEARCH_MODEL)
    # The sweep took the three oldest products (tee0 among them): one row per product, rewritten.
    assert set(ProductLook.objects.values_list("product_id", flat=True)) == {p["tee0"].id, p["tee1"].id, p["tee2"].id}


def test_an_unreadable_photo_is_logged_and_skipped_not_retried(shop, caplog):
    p = shop["products"]
    image = p["tee0"].images.first()
    image.image.storage.delete(image.image.name)
    with caplog.at_level(logging.WARNING, logger="recommender.services"):
        assert product_looks_refresh(product_ids=[p["tee0"].id, p["tee1"].id]) == 2
    assert "Cannot read the photo of product" in caplog.text
    assert ProductLook.objects.filter(product=p["tee0"], has_look=False).exists()
    assert p["tee0"].id not in looks_stale_product_ids(limit=100)


def test_unknown_hidden_and_unembedded_products_are_skipped(shop):
    p = shop["products"]
    Product.objects.filter(id=p["tee1"].id).update(status=Product.Status.HIDDEN)
    bare = ProductFactory(title="new", slug="new", category=shop["cats"]["tshirts"])
    assert product_looks_refresh(product_ids=[p["tee1"].id, bare.id, 10**9]) == 0
    assert not ProductLook.objects.exists()


def test_embedding_an_image_schedules_its_products_look(shop, django_capture_on_commit_callbacks):
    p = shop["products"]
    announced = []

    def listen(sender, *, product_ids, model_name, **kwargs):
        announced.append((product_ids, model_name))

    events.images_embedded.connect(listen)
    try:
        image_ids = [p["tee0"].images.first().id, p["jeans0"].images.first().id]
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            assert images_embed(image_ids=image_ids).embedded == 2
    finally:
        events.images_embedded.disconnect(listen)
    assert announced == [(sorted([p["tee0"].id, p["jeans0"].id]), settings.VISUALSEARCH_MODEL)]
    assert callbacks  # the task is enqueued after the commit (run eagerly here: no broker in tests)
    assert set(ProductLook.objects.values_list("product_id", flat=True)) == {p["tee0"].id, p["jeans0"].id}


# API and page ------------------------------------------------------------------------


def test_the_api_returns_the_look_and_where_it_comes_from(shop, client):
    p, fam = shop["products"], shop["families"]
    store_look(p["tee1"], suggestions=[p["jeans3"], p["jeans1"]], family=fam["jeans"])
    url = reverse("recommender_api:product_complete_look", kwargs={"product_id": p["tee0"].id})
    body = client.get(url).json()
    assert body["borrowed_from"]["id"] == p["tee1"].id and body["borrowed_from"]["url"].endswith("/products/tee1/")
    assert body["photo_url"].startswith("http://testserver/") and len(body["groups"]) == 1
    group = body["groups"][0]
    assert (group["kind"], group["label"], group["category"], group["box"]) == ("bottom", "Jeans", "apparel-bottomwear-jeans", [10, 40, 50, 80])
    assert [r["title"] for r in group["results"]] == ["jeans3", "jeans1"]
    own = client.get(reverse("recommender_api:product_complete_look", kwargs={"product_id": p["tee1"].id})).json()
    assert own["borrowed_from"] is None and [r["title"] for r in own["groups"][0]["results"]] == ["jeans3", "jeans1"]
    none = client.get(reverse("recommender_api:product_complete_look", kwargs={"product_id": p["sneaker0"].id})).json()
    assert none == {"groups": [], "borrowed_from": None, "photo_url": None}


def test_the_api_answers_404_for_unknown_and_hidden_products(shop, client):
    Product.objects.filter(id=shop["products"]["tee0"].id).update(status=Product.Status.HIDDEN)
    for product_id in (shop["products"]["tee0"].id, 10**9):
        response = client.get(reverse("recommender_api:product_complete_look", kwargs={"product_id": product_id}))
        assert response.status_code == 404 and response.json() == {"detail": "No such product."}


def test_the_product_page_shows_the_look_after_the_similar_strip(shop, client):
    p, fam = shop["products"], shop["families"]
    store_look(p["tee1"], suggestions=[p["jeans3"], p["jeans1"]], family=fam["jeans"])
    page = client.get(p["tee1"].get_absolute_url()).content.decode()
    section = page[page.index('id="complete-the-look"'):]
    assert page.index('id="similar"') < page.index('id="complete-the-look"')
    assert "Pieces like the ones worn with it in the photo." in section
    assert 'data-look-group="bottom"' in section and 'title="The jeans in the photo"' in section
    assert section.index("/products/jeans3/") < section.index("/products/jeans1/")
    borrowed = client.get(p["tee0"].get_absolute_url()).content.decode()
    assert "Worn with a similar piece in our photos" in borrowed and 'href="/products/tee1/" data-look-source' in borrowed
    plain = client.get(p["sneaker0"].get_absolute_url()).content.decode()
    assert 'id="complete-the-look"' not in plain  # nothing to show: no empty section

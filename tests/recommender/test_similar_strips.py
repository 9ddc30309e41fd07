"""Precomputed similar strips (``SimilarStrip``): a product page reads its strip instead of
searching the index, spare cards stand in for products hidden since, a newly embedded product
enters the strips it belongs in, and the sweep and ``compute_similar`` fill what is missing,
outdated or old."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from recommender import selectors, services, tasks
from recommender.models import SimilarStrip
from recommender.selectors import product_similar
from shop.models import Product
from tests.factories import ProductFactory, ProductImageFactory
from tests.visualsearch.test_selectors import catalogue, shared_catalogue  # noqa: F401 (fixtures)
from visualsearch.events import active_model_changed
from visualsearch.indexing import images_embed
from visualsearch.selectors import active_model_name

pytestmark = pytest.mark.django_db

K = 5


@pytest.fixture
def six_cards(monkeypatch):
    """Strips of K cards and one spare, so that the small test catalogue fills them."""
    monkeypatch.setattr(selectors, "SIMILAR_STRIP_CARDS", K + 1)
    monkeypatch.setattr(services, "SIMILAR_STRIP_CARDS", K + 1)


def _product(catalogue, key: str) -> Product:
    return Product.objects.select_related("category").get(id=catalogue.products[key].id)


def _ids(similar) -> list[int]:
    return [m.product.id for m in similar.matches]


def _no_search(monkeypatch):
    def search(**kwargs):
        raise AssertionError("the index was searched")

    monkeypatch.setattr(selectors, "nearest_hits", search)


def test_a_product_page_reads_its_precomputed_strip_without_searching(catalogue, six_cards, monkeypatch):
    product = _product(catalogue, "red_tee")
    live = product_similar(product=product, k=K)
    assert services.similar_strips_refresh(product_ids=[product.id]) == 1
    _no_search(monkeypatch)
    with CaptureQueriesContext(connection) as captured:
        kept = product_similar(product=product, k=K)
    assert _ids(kept) == _ids(live) and len(kept.matches) == K
    assert [m.score for m in kept.matches] == pytest.approx([m.score for m in live.matches], abs=1e-4)  # kept to 4 decimals
    # The active model (read every time in tests), the strip, the cards' products and their images.
    assert len(captured) == 4
    # Fewer cards come from the same strip; another scope or more cards than the strip's default search.
    assert _ids(product_similar(product=product, k=3)) == _ids(live)[:3]


def test_a_spare_card_stands_in_for_a_product_hidden_since(catalogue, six_cards, monkeypatch):
    product = _product(catalogue, "red_tee")
    services.similar_strips_refresh(product_ids=[product.id])
    cards = SimilarStrip.objects.get(product=product).cards
    assert len(cards) == K + 1
    Product.objects.filter(id=cards[0][0]).update(status=Product.Status.HIDDEN)
    search = selectors.nearest_hits
    _no_search(monkeypatch)
    assert _ids(product_similar(product=product, k=K)) == [card[0] for card in cards[1:]]
    # Two hidden and one spare: the strip is short, the index is searched again.
    Product.objects.filter(id=cards[1][0]).update(status=Product.Status.HIDDEN)
    monkeypatch.setattr(selectors, "nearest_hits", search)
    again = product_similar(product=product, k=K)
    assert len(again.matches) == K and not {cards[0][0], cards[1][0]} & set(_ids(again))


def test_a_newly_embedded_product_enters_the_strips_it_belongs_in(catalogue, six_cards, django_capture_on_commit_callbacks):
    ids = [p.id for p in catalogue.products.values()]
    services.similar_strips_refresh(product_ids=ids)
    red_tee = _product(catalogue, "red_tee")
    twin = ProductFactory(category=catalogue.categories["tshirts"])
    image = ProductImageFactory(product=twin, data=catalogue.images["red_tee"])  # the same picture, another listing
    with django_capture_on_commit_callbacks(execute=True):
        images_embed(image_ids=[image.id])  # what the workers' task runs; sends images_embedded
    strip = SimilarStrip.objects.get(product=red_tee)
    assert strip.cards[0][0] == twin.id and strip.cards[0][2] > 0.99
    assert SimilarStrip.objects.filter(product=twin).exists()
    assert product_similar(product=red_tee, k=K).matches[0].product.id == twin.id
    # Strips whose last card scores above the newcomer are left as they were.
    untouched = SimilarStrip.objects.filter(product_id__in=ids, computed_at__lt=strip.computed_at)
    assert untouched.exists()
    for kept in untouched:
        assert twin.id not in [card[0] for card in kept.cards]


def test_the_sweep_fills_missing_outdated_and_old_strips(catalogue, six_cards, settings):
    ids = sorted(p.id for p in catalogue.products.values())
    assert set(services.similar_strips_stale_product_ids(limit=100)) == set(ids)
    services.similar_strips_refresh(product_ids=ids)
    assert services.similar_strips_stale_product_ids(limit=100) == []
    SimilarStrip.objects.filter(product_id=ids[0]).update(model_name="another-model")
    SimilarStrip.objects.filter(product_id=ids[1]).update(computed_at=timezone.now() - timedelta(seconds=settings.RECOMMENDER_SIMILAR_MAX_AGE + 60))
    SimilarStrip.objects.filter(product_id=ids[2]).delete()
    assert services.similar_strips_stale_product_ids(limit=100) == [ids[2], ids[0], ids[1]]  # never computed first
    # A strip of another model is not read.
    assert product_similar(product=_product_by_id(ids[0]), k=K).matches
    assert services.similar_strips_sweep(batch_size=2) == 2
    assert services.similar_strips_stale_product_ids(limit=100) == [ids[1]]
    assert services.similar_strips_sweep() == 1
    assert SimilarStrip.objects.filter(model_name=active_model_name()).count() == len(ids)


def _product_by_id(product_id: int) -> Product:
    return Product.objects.select_related("category").get(id=product_id)


def test_compute_similar_fills_the_catalogue_and_then_has_nothing_to_do(catalogue, capsys):
    call_command("compute_similar", "--no-progress")
    assert SimilarStrip.objects.filter(model_name=active_model_name()).count() == len(catalogue.products)
    assert "Computed" in capsys.readouterr().out
    call_command("compute_similar", "--no-progress")
    assert "Every embedded product has a fresh similar strip." in capsys.readouterr().out


def test_with_strips_turned_off_every_strip_is_searched(catalogue, six_cards, settings, monkeypatch):
    product = _product(catalogue, "red_tee")
    services.similar_strips_refresh(product_ids=[product.id])
    settings.RECOMMENDER_SIMILAR_STRIPS = False
    searched = []
    search = selectors.nearest_hits
    monkeypatch.setattr(selectors, "nearest_hits", lambda **kwargs: searched.append(kwargs) or search(**kwargs))
    similar = product_similar(product=product, k=K)
    assert searched and _ids(similar) == [card[0] for card in SimilarStrip.objects.get(product=product).cards[:K]]


def test_a_new_active_model_gets_every_strip_rebuilt_in_batches(catalogue, six_cards, monkeypatch, django_capture_on_commit_callbacks):
    ids = [p.id for p in catalogue.products.values()]
    services.similar_strips_refresh(product_ids=ids)
    SimilarStrip.objects.update(model_name="the-model-before")  # what a promotion leaves behind
    monkeypatch.setattr(tasks, "CATCH_UP_BATCH", 4)
    batches = []
    sweep = services.similar_strips_sweep
    monkeypatch.setattr(services, "similar_strips_sweep", lambda **kwargs: batches.append(kwargs) or sweep(**kwargs))
    with django_capture_on_commit_callbacks(execute=True):
        active_model_changed.send(sender=None, model_name=active_model_name(), previous_name="the-model-before")
    # Eager Celery: each task rewrote a batch of 4 and enqueued the next, until none was left.
    assert batches == [{"batch_size": 4}] * (len(ids) // 4 + 1)
    assert SimilarStrip.objects.filter(model_name=active_model_name()).count() == len(ids)

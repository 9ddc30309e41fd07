"""An upload that is a copy of a listing's photo (a saved picture, a screenshot, a thumbnail)
finds that listing first: ``selectors.images_same_photo``, the pin in
``product_search_by_vector`` and ``photo_search``, the kept search, the API and the page."""

from __future__ import annotations

import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from shop.filters import ProductFilters
from shop.models import Product
from tests.visualsearch.duplicates.photos import TROUSERS, photo
from tests.visualsearch.test_selectors import catalogue, keys_of, pil, shared_catalogue  # noqa: F401 (fixtures)
from visualsearch import looks, photos, selectors
from visualsearch.duplicates.detection import fingerprint
from visualsearch.photos import photo_embed
from visualsearch.selectors import images_same_photo, product_search_by_vector

pytestmark = pytest.mark.django_db


def resized_jpeg(data: bytes, size: tuple[int, int], quality: int = 80) -> Image.Image:
    """The picture saved again at another size, as a shopper's copy would be."""
    buffer = io.BytesIO()
    pil(data).resize(size, Image.Resampling.LANCZOS).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer)


def same_photo_of(image: Image.Image) -> list[selectors.SamePhoto]:
    return images_same_photo(fingerprint=fingerprint(image), vector=photo_embed(image=image))


def test_a_resized_copy_of_a_listings_photo_names_that_listing(catalogue):
    copy = resized_jpeg(catalogue.images["green_shirt"], (300, 375))
    (found,) = same_photo_of(copy)
    shirt = catalogue.products["green_shirt"]
    assert found.product_id == shirt.id and found.image_id == shirt.primary_image.id
    assert found.hash_distance <= 8 and 0.48 <= found.score <= 1.0


def test_a_photo_of_nothing_listed_names_no_listing(catalogue):
    unlisted = Image.new("RGB", (300, 375), (90, 160, 150))
    unlisted.paste((250, 250, 250), (40, 60, 260, 200))
    assert same_photo_of(unlisted) == []


def test_a_hidden_listing_is_not_named(catalogue):
    Product.objects.filter(id=catalogue.products["green_shirt"].id).update(status=Product.Status.HIDDEN)
    assert same_photo_of(resized_jpeg(catalogue.images["green_shirt"], (300, 375))) == []


def test_the_lookup_reads_the_bands_once_and_the_listings_only_for_a_copy(catalogue):
    """Nearly every upload is no copy: it costs one indexed read of the hashes."""
    model = selectors.active_model_name()
    unlisted = photo(shape=TROUSERS, print_seed=7)
    for image, queries in ((unlisted, 1), (resized_jpeg(catalogue.images["green_shirt"], (300, 375)), 2)):
        vector = photo_embed(image=image)
        with CaptureQueriesContext(connection) as context:
            images_same_photo(fingerprint=fingerprint(image), vector=vector, model_name=model)
        assert len(context.captured_queries) == queries
        assert "bands &&" in context.captured_queries[0]["sql"]  # through the bands' GIN index


def test_a_pinned_listing_leads_whatever_its_cosine_and_only_if_it_passes_the_filters(catalogue):
    """The pin is what the shopper asked for even where the embedding ranks it last (a tiny
    thumbnail); the shopper's own filters still hold."""
    query = photo_embed(image=pil(catalogue.images["red_tee"]))
    plain = product_search_by_vector(vector=query, k=4)
    farthest = product_search_by_vector(vector=query, k=len(catalogue.products))[-1]
    key, far = keys_of([farthest], catalogue)[0], farthest.product
    assert key not in keys_of(plain, catalogue)
    pinned = product_search_by_vector(vector=query, k=4, same_photo=[far.id])
    assert keys_of(pinned, catalogue) == [key, *keys_of(plain, catalogue)[:3]]
    assert [m.same_photo for m in pinned] == [True, False, False, False]
    assert pinned[0].score == pytest.approx(farthest.score)  # its own cosine, not a made-up one
    other_gender = ProductFilters(gender="men" if far.gender != "men" else "women")
    filtered = product_search_by_vector(vector=query, k=4, same_photo=[far.id], filters=other_gender)
    assert key not in keys_of(filtered, catalogue) and not any(m.same_photo for m in filtered)
    excluded = product_search_by_vector(vector=query, k=4, same_photo=[far.id], exclude_product_ids={far.id})
    assert key not in keys_of(excluded, catalogue)
    # A kept search remembers the pin for a day: a listing hidden since is not shown.
    Product.objects.filter(id=far.id).update(status=Product.Status.HIDDEN)
    assert keys_of(product_search_by_vector(vector=query, k=4, same_photo=[far.id]), catalogue) == keys_of(plain, catalogue)


def test_a_photo_search_shows_the_pinned_listing_above_the_floor_and_does_not_narrow_by_guess(catalogue, monkeypatch):
    monkeypatch.setattr(photos, "search_settings", lambda name: photos.SearchSettings(colour_weight=0.0, relevance_floor=0.999))
    narrowed = []
    real_decide = photos.category_decide
    monkeypatch.setattr(photos, "category_decide", lambda **kwargs: narrowed.append(kwargs["auto"]) or real_decide(**kwargs))
    query = photo_embed(image=pil(catalogue.images["red_tee"]))
    sneaker = catalogue.products["purple_sneaker"]
    model = selectors.active_model_name()
    outcome = photos.photo_search(vector=query, colour=None, k=4, model_name=model, same_photo=[sneaker.id])
    assert keys_of(outcome.matches, catalogue) == ["purple_sneaker", "red_tee"]  # the pin, and the one above 0.999
    photos.photo_search(vector=query, colour=None, k=4, model_name=model)
    assert narrowed == [False, True]


def test_a_kept_search_of_a_listings_photo_searches_the_whole_photo_with_the_pin(catalogue):
    copy = resized_jpeg(catalogue.images["blue_jeans"], (240, 300)).convert("RGB")
    search = looks.look_create(photo=copy, locate=False)
    jeans = catalogue.products["blue_jeans"]
    assert [m["product"] for m in search.items[0]["same_photo"]] == [jeans.id]
    assert looks.look_default_item(search) == 0
    results = looks.look_results(search=search, k=3)
    assert results.item.index == 0 and results.item.same_photo == (jeans.id,)
    assert results.outcome.matches[0].product.id == jeans.id and results.outcome.matches[0].same_photo
    # A box drawn on the photo is a garment of it, not the listing's photo.
    boxed = looks.look_results(search=search, k=3, box=photos.Box(0, 0, 120, 150))
    assert not any(m.same_photo for m in boxed.outcome.matches)


def test_the_api_and_the_page_say_which_result_is_the_uploaded_photo(client, catalogue):
    buffer = io.BytesIO()
    resized_jpeg(catalogue.images["navy_tee"], (320, 400)).save(buffer, format="JPEG")
    response = client.post("/api/search/image", {"image": io.BytesIO(buffer.getvalue()), "k": 3, "detect": "false"})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert results[0]["id"] == catalogue.products["navy_tee"].id
    assert [row["same_photo"] for row in results] == [True, False, False]
    page = client.get(response.json()["search_url"])
    assert page.status_code == 200
    assert page.content.decode().count("data-same-photo") == 1


@pytest.fixture
def query_crop(monkeypatch):
    """The active model searches with its shopper's photos' centre crops (as v10 does; the test
    model, a backbone, records no query crop)."""
    from visualsearch.embedding import clear_cache
    from visualsearch.embedding.config import EmbeddingSettings

    monkeypatch.setattr(EmbeddingSettings, "query_crop_share", lambda self, metadata: 0.8)
    clear_cache()
    yield
    clear_cache()


def test_a_shoppers_photo_is_embedded_as_a_query_and_a_copy_still_names_its_listing(catalogue, query_crop, monkeypatch):
    import numpy as np

    from visualsearch.embedding import load_embedder

    embedder = load_embedder(selectors.active_model_name())
    assert embedder.query_crop == 0.8
    copy = resized_jpeg(catalogue.images["green_shirt"], (300, 375)).convert("RGB")
    vector = photo_embed(image=copy)
    np.testing.assert_allclose(vector, embedder.embed_queries([copy])[0], atol=1e-6)
    assert float(vector @ embedder.embed([copy])[0]) < 0.9999  # the crop counts: not the whole photo's vector
    # The same-photo rule reads the query's vector: a copy of a listing's photo still names it.
    (found,) = same_photo_of(copy)
    assert found.product_id == catalogue.products["green_shirt"].id
    # A box drawn on it is a region, already framed on the garment: embedded as it is.
    boxed = photo_embed(image=copy, box=photos.Box(0, 0, 200, 250))
    np.testing.assert_allclose(boxed, embedder.embed([copy.crop((0, 0, 200, 250))])[0], atol=1e-5)
    # A kept search embeds the whole photo (with its crop) and every garment found (without) in one call.
    calls = []
    real = type(embedder).embed_queries
    monkeypatch.setattr(type(embedder), "embed_queries",
                        lambda self, images, *a, **kw: calls.append(kw["whole"]) or real(self, images, *a, **kw))
    search = looks.look_create(photo=copy)
    assert calls == [[True] + [False] * (len(search.items) - 1)]
    assert search.items[0]["same_photo"][0]["product"] == found.product_id

"""Shop the look end to end on real photos: two held-out catalogue garments cut out of their
studio white and laid on a real surface (a consumer photo's own bed or floor), uploaded to
the storefront; the learned segmenter finds each garment and each item's results start with
its own product. Reads a small slice of ../shared/data."""

from __future__ import annotations

import io
import random
import re

import pytest
from django.urls import reverse
from PIL import Image

from lab import datasets
from lab.evaluation.looks import CANVAS, scaled, studio_cutout, surface_background
from lab.evaluation.quality import holdout_split
from tests.factories import ProductFactory, ProductImageFactory
from tests.visualsearch.test_views import result_slugs, search
from visualsearch.embedding import DEFAULT_MODEL
from visualsearch.indexing import images_embed
from visualsearch.models import PhotoSearch
from visualsearch.segmenter import ENV_SEGMENTER, segmenter_active

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not (datasets.CATALOG_DIR / "labels.csv").exists() or not (datasets.CONSUMER_DIR / "labels.csv").exists(),
        reason="needs ../shared/data (the catalogue and the consumer photos) beside the repository",
    ),
]
GALLERY_PER_SUB = 12  # products per sub-category in the test catalogue: the garment's own and its look-alikes


def test_each_garment_of_a_real_flat_lay_finds_its_own_product(client, monkeypatch):
    monkeypatch.delenv(ENV_SEGMENTER, raising=False)
    assert segmenter_active() is not None
    split = holdout_split(DEFAULT_MODEL)
    catalogue = datasets.catalog_read(datasets.CATALOG_DIR)
    held = split.product_holdout([i.id for i in catalogue], datasets.CATALOG_DIR)
    by_sub = {sub: sorted((i for i in catalogue if i.id in held and i.sub_category == sub), key=lambda i: i.id)[:GALLERY_PER_SUB]
              for sub in ("Topwear", "Shoes")}
    products = {}
    for item in by_sub["Topwear"] + by_sub["Shoes"]:
        product = ProductFactory(title=item.display_name or item.id, slug=f"p-{item.id}")
        products[item.id] = ProductImageFactory(product=product, data=item.path.read_bytes())
    assert images_embed(image_ids=[i.id for i in products.values()], detect_duplicates=False).embedded == len(products)

    top, shoe = by_sub["Topwear"][0], by_sub["Shoes"][0]
    photos = [p for p in datasets.consumer_read(datasets.CONSUMER_DIR) if split.consumer_is_holdout(p.sender_id, p.id)]
    canvas = surface_background(sorted(photos, key=lambda p: p.id)[0].path, random.Random(3))
    for item, (x, y) in ((top, (40, 60)), (shoe, (470, 700))):
        piece = studio_cutout(item.path)
        piece = scaled(piece, 0.8 * min(CANVAS[0] / 2 / piece.width, CANVAS[1] / 2 / piece.height))
        canvas.paste(piece, (x, y), piece)
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=90)

    page = search(client, reverse("visualsearch:shop_the_look"), buffer.getvalue())
    kept = PhotoSearch.objects.get()
    items = [item["kind"] for item in kept.items]
    assert items[0] == "whole" and len(items) >= 3, items
    assert len(re.findall(r'class="stl-chip[^"]*" href="\?item=', page.content.decode())) == len(items)
    firsts = {result_slugs(client.get(page.request["PATH_INFO"], {"item": n, "auto": "0"}))[0] for n in range(1, len(items))}
    assert {f"p-{top.id}", f"p-{shoe.id}"} <= firsts, firsts

"""Training the flat-lay segmenter (lab/training/segmenter.py) on composites of the shared
data: what it may train on, and a tiny run end to end. Reads a small slice of ../shared/data."""

import random

import numpy as np
import pytest

from lab import datasets
from lab.evaluation.looks import VALIDATION_GALLERY
from lab.evaluation.matching import validation_consumer_of
from lab.evaluation.quality import holdout_split
from lab.training.segmenter import SegmenterRecipe, composites_render, segmenter_train, training_pools
from visualsearch.segmenter import Segmenter

pytestmark = pytest.mark.skipif(
    not (datasets.CATALOG_DIR / "labels.csv").exists() or not (datasets.CONSUMER_DIR / "labels.csv").exists(),
    reason="needs ../shared/data (the catalogue and the consumer photos) beside the repository",
)


def test_it_never_trains_on_what_evaluate_looks_scores():
    recipe = SegmenterRecipe()
    products, photos = training_pools(recipe)
    split = holdout_split(recipe.holdout_model)
    catalogue = datasets.catalog_read(datasets.CATALOG_DIR)
    held = split.product_holdout([i.id for i in catalogue], datasets.CATALOG_DIR)
    train_side = [i for i in catalogue if i.id not in held]
    validation_gallery = {i.id for i in random.Random(recipe.validation_seed).sample(train_side, VALIDATION_GALLERY)}
    ids = {i.id for i in products}
    assert len(ids) > 1000 and not ids & held and not ids & validation_gallery
    held_back = validation_consumer_of(recipe.holdout_model)
    assert len(photos) > 500
    assert not any(split.consumer_is_holdout(p.sender_id, p.id) or held_back(p) for p in photos)


def test_composites_and_their_masks_line_up():
    recipe = SegmenterRecipe(composites=6, large_share=0.5, seed=3)
    products, photos = training_pools(recipe)
    images, targets = composites_render(recipe, products[:300], photos[:50], log=lambda *_: None)
    assert images.shape == (6, 160, 120, 3) and images.dtype == np.uint8
    assert targets.shape == (6, 160, 120) and 0.0 <= targets.min() and targets.max() <= 1.0
    # Every composite holds garments and some surface; the same seed draws the same composites.
    share = (targets > 0.5).mean(axis=(1, 2))
    assert (share > 0.02).all() and (share < 0.98).all()
    again, _ = composites_render(recipe, products[:300], photos[:50], log=lambda *_: None)
    assert np.array_equal(images, again)


def test_a_tiny_run_writes_weights_the_locator_can_load(tmp_path):
    recipe = SegmenterRecipe(name="tiny", composites=40, kept_aside=8, epochs=1, batch=8)
    metadata = segmenter_train(recipe, tmp_path / "tiny", log=lambda *_: None)
    assert metadata["recipe"]["composites"] == 40 and len(metadata["history"]) == 1
    assert 0.0 <= metadata["kept_aside_pixel_iou"] <= 1.0
    weights = tmp_path / "tiny" / "weights.pt"
    assert weights.stat().st_size < 2_000_000  # float16: the repository's limit per file is 2 MB
    probability = Segmenter(tmp_path / "tiny").foreground(np.zeros((97, 131, 3), np.uint8))
    assert probability.shape == (97, 131) and probability.dtype == np.float32


@pytest.mark.parametrize(
    ("options", "message"),
    [({"composites": 100}, "at least 300 composites"), ({"large_share": 1.5}, "share between 0 and 1"),
     ({"holdout": "no-such-model"}, "Unknown model")],
)
def test_the_command_refuses_a_recipe_it_cannot_train(tmp_path, options, message):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=message):
        call_command("train_segmenter", out=tmp_path / "x", **options)
    assert not (tmp_path / "x").exists()

"""The shipped flat-lay segmenter on composites of held-out products (never trained on),
against the colour rule it replaces. Reads a small slice of ../shared/data."""

import numpy as np
import pytest

from lab import datasets
from lab.evaluation import looks
from lab.evaluation.quality import holdout_split
from visualsearch.embedding import DEFAULT_MODEL
from visualsearch.garments import iou, locate_garments
from visualsearch.segmenter import ENV_SEGMENTER

pytestmark = pytest.mark.skipif(
    not (datasets.CATALOG_DIR / "labels.csv").exists() or not (datasets.CONSUMER_DIR / "labels.csv").exists(),
    reason="needs ../shared/data (the catalogue and the consumer photos) beside the repository",
)


def found_share(composites) -> float:
    hits = [max((iou(r.box, box) for r in locate_garments(c.image)), default=0.0) >= looks.IOU_HIT
            for c in composites for box in c.boxes]
    return float(np.mean(hits))


def test_the_segmenter_finds_the_garments_of_held_out_composites(monkeypatch, tmp_path):
    split = holdout_split(DEFAULT_MODEL)
    catalogue = datasets.catalog_read(datasets.CATALOG_DIR)
    held = split.product_holdout([i.id for i in catalogue], datasets.CATALOG_DIR)
    gallery = [i for i in catalogue if i.id in held]
    photos = [p for p in datasets.consumer_read(datasets.CONSUMER_DIR) if split.consumer_is_holdout(p.sender_id, p.id)]
    options = looks.LooksOptions(model=DEFAULT_MODEL, holdout_model=DEFAULT_MODEL, composites=12, seed=5, out_dir=tmp_path)
    composites = looks.composites_build(options, gallery, photos)
    assert sum(len(c.boxes) for c in composites) >= 24

    monkeypatch.delenv(ENV_SEGMENTER, raising=False)
    learned = found_share(composites)
    monkeypatch.setenv(ENV_SEGMENTER, "off")
    colour = found_share(composites)
    assert learned >= 0.85, learned
    assert learned >= colour, (learned, colour)

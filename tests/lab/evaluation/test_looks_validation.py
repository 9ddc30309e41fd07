"""``evaluate_looks --validation``: the training side, where the locator's settings are chosen
(training products pasted, the training side's photos as backgrounds, the photos the model's
training held back as single garments). Reads a small slice of ../shared/data."""

import pytest

from lab import datasets
from lab.evaluation import looks
from lab.evaluation.matching import validation_consumer_of
from lab.evaluation.quality import holdout_split
from visualsearch.embedding import DEFAULT_MODEL

pytestmark = pytest.mark.skipif(
    not (datasets.CATALOG_DIR / "labels.csv").exists() or not (datasets.CONSUMER_DIR / "labels.csv").exists(),
    reason="needs ../shared/data (the catalogue and the consumer photos) beside the repository",
)


def test_the_validation_side_never_uses_the_hold_out(tmp_path, monkeypatch):
    built, opened = {}, []
    build, image_open = looks.composites_build, looks.Image.open

    def recording_build(options, gallery, photos):
        built["gallery"], built["photos"] = [i.id for i in gallery], photos
        return build(options, gallery, photos)

    def recording_open(path, *args, **kwargs):
        opened.append(str(path))
        return image_open(path, *args, **kwargs)

    monkeypatch.setattr(looks, "composites_build", recording_build)
    monkeypatch.setattr(looks.Image, "open", recording_open)
    options = looks.LooksOptions(
        model=DEFAULT_MODEL, holdout_model=DEFAULT_MODEL, composites=3, people=2, consumer=8, latency_photos=1,
        drawings=2, seed=7, out_dir=tmp_path, validation=True, validation_gallery=120,
    )
    result = looks.looks_run(options, log=lambda *_: None)

    split = holdout_split(DEFAULT_MODEL)
    catalogue = datasets.catalog_read(datasets.CATALOG_DIR)
    held = split.product_holdout([i.id for i in catalogue], datasets.CATALOG_DIR)
    assert result["side"] == "validation" and result["gallery"] == 120 == len(built["gallery"])
    assert not set(built["gallery"]) & held
    assert built["photos"] and not any(split.consumer_is_holdout(p.sender_id, p.id) for p in built["photos"])
    # Every consumer photo it opened (backgrounds, pasted photos, single garments) is a training-side one,
    # and the single garments are those the model's training held back.
    held_back = validation_consumer_of(DEFAULT_MODEL)
    by_path = {str(p.path): p for p in datasets.consumer_read(datasets.CONSUMER_DIR)}
    photos_opened = [by_path[path] for path in opened if path in by_path]
    assert photos_opened and not any(split.consumer_is_holdout(p.sender_id, p.id) for p in photos_opened)
    singles = result["single_garment"]["photos"]
    assert 0 < singles <= 8 and sum(held_back(p) for p in photos_opened) >= singles
    assert sum(v["n"] for v in result["composites"]["recall_by_kind"].values()) >= 6  # 2-4 garments per composite
    assert (tmp_path / "looks.md").read_text().startswith("# Shop the look on the validation side of")
    # No real photo of the run is taken for a drawing; the drawings are counted per noise level.
    taken = result["drawings"]["real_photos_taken_for_drawings"]
    assert taken == {"composites": [0, 3], "single_garment": [0, singles]}
    assert {v["drawings"] for v in result["drawings"]["by_noise"].values()} == {2}
    assert "drawings in flat colours" in (tmp_path / "looks.md").read_text()


def test_a_model_without_a_recorded_split_has_no_validation_side():
    assert validation_consumer_of("efficientnet_lite0") is None

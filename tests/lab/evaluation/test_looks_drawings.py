"""``evaluate_looks``' drawings: garments drawn in flat colours, which the locator hands to the
colour rule (``garments.is_drawing``). No shared data needed."""

import random

import numpy as np

from lab.evaluation import looks
from visualsearch import garments


def test_a_drawing_is_seeded_and_its_boxes_are_what_was_drawn():
    layouts = set()
    for n in range(12):
        image, boxes = looks.drawing_build(random.Random(n), noise=4)
        again, boxes_again = looks.drawing_build(random.Random(n), noise=4)
        assert image.size == looks.CANVAS and boxes == boxes_again
        assert np.array_equal(np.asarray(image), np.asarray(again))
        pixels = np.asarray(image, dtype=np.int16)
        outside = np.ones(pixels.shape[:2], bool)
        for left, top, right, bottom in boxes:
            outside[top:bottom, left:right] = False
        # The sheet: what no box covers, or the margin around a garment filling the photo.
        background = np.median(pixels[outside], axis=0) if boxes else pixels[2, 2]
        for left, top, right, bottom in boxes or [(60, 60, looks.CANVAS[0] - 60, looks.CANVAS[1] - 60)]:
            middle = pixels[(top + bottom) // 2, (left + right) // 2]
            assert np.abs(middle - background).max() > 30, (n, boxes)
        layouts.add(len(boxes))
    assert 0 in layouts and len(layouts) >= 3  # one filling the photo, and one or more garments


def test_drawings_are_read_as_drawn_and_were_not_before(monkeypatch):
    measured = looks.drawings_measure(seed=0, per_noise=8)
    assert set(measured) == {str(n) for n in looks.DRAWING_NOISE}
    for level in measured.values():
        assert level["taken_for_drawings"] >= 0.75 and level["read_as_drawn"] >= 0.85, measured
    monkeypatch.setattr(garments, "DRAWING_FLAT_SHARE", 2.0)  # every drawing to the segmenter, as before
    before = looks.drawings_measure(seed=0, per_noise=8)
    assert np.mean([v["read_as_drawn"] for v in before.values()]) < np.mean([v["read_as_drawn"] for v in measured.values()])

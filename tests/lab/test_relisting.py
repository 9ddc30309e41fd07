"""Re-listing edits and the benchmark's threshold choice (no CNN, no shared data)."""

import numpy as np
from PIL import Image

from lab.evaluation.relisting import Pair, choose_thresholds, decide
from lab.relisting import EDIT_NAMES, MAX_EDITS, MIN_EDITS, relisted_copy
from tests.visualsearch.duplicates.photos import photo
from visualsearch.duplicates.verification import Verification, VerifyThresholds


def test_relisted_copies_are_seeded_and_compose_two_to_four_edits():
    original = photo(print_seed=2, size=(240, 320))
    first, edits, notes = relisted_copy(original, seed=7, item_id="123")
    again, edits_again, _ = relisted_copy(original, seed=7, item_id="123")
    assert edits == edits_again and np.array_equal(np.asarray(first), np.asarray(again))
    assert MIN_EDITS <= len(edits) <= MAX_EDITS and set(edits) <= set(EDIT_NAMES)
    assert edits.index("jpeg") == len(edits) - 1 if "jpeg" in edits else True
    cropped, _, notes = relisted_copy(original, seed=7, item_id="123", edits=("crop",))
    assert 0.02 <= notes["crop_max_share"] <= 0.12 and cropped.size[0] < original.size[0]


def test_every_edit_gives_a_picture():
    original = photo(print_seed=2, size=(240, 320))
    for name in EDIT_NAMES:
        out, _, _ = relisted_copy(original, seed=1, item_id=name, edits=(name,))
        assert isinstance(out, Image.Image) and min(out.size) > 10


def _pair(positive, inliers, share=0.5, cosine=0.9):
    return Pair("a", "b", positive, 0, "copy", verification=Verification(inliers=inliers, matches=inliers, area=0.5, mirrored=False, inlier_share=share), cosine=cosine)


def test_thresholds_are_chosen_for_recall_at_the_target_precision():
    pairs = [_pair(True, n) for n in (30, 60, 90, 120)] + [_pair(False, n) for n in (10, 25, 45)]
    chosen, metrics = choose_thresholds(pairs)
    assert metrics["precision"] == 1.0 and metrics["recall"] == 0.75
    assert chosen.min_inliers in (50, 60) and not decide(pairs[-1], chosen)
    assert decide(Pair("a", "b", True, 0, "copy", hash_rule=True), VerifyThresholds(min_inliers=10**9))

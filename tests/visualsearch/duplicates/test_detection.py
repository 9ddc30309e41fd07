"""The detector's arithmetic on generated photos (no database, no CNN)."""

from PIL import Image, ImageOps

from tests.visualsearch.duplicates.photos import TROUSERS, jpeg, photo, relisted_copy
from visualsearch.duplicates.detection import (
    DEFAULT_THRESHOLDS,
    MAX_COLOUR_DISTANCE,
    colour_distance,
    fingerprint,
    hamming,
    hash_distance,
    near_copy_score,
    pr_curve,
    precision_recall,
    same_photo_ranked,
)


def decoded(data: bytes) -> Image.Image:
    import io

    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_resized_reencoded_cropped_copy_keeps_a_small_hash_and_colour_distance():
    original = photo(print_seed=3)
    copy = decoded(jpeg(relisted_copy(original), quality=70))
    a, b = fingerprint(original), fingerprint(copy)
    assert hash_distance(a, b) <= 8
    assert colour_distance(a, b) < MAX_COLOUR_DISTANCE
    assert DEFAULT_THRESHOLDS.is_near_copy(cosine=0.9, hash_distance=hash_distance(a, b), colour_distance=colour_distance(a, b))


def test_white_padding_is_absorbed_by_the_trimmed_hash():
    original = photo(print_seed=4)
    padded = ImageOps.expand(original, border=60, fill="white")
    assert hash_distance(fingerprint(original), fingerprint(padded)) <= 4


def test_another_design_is_far_in_hash_space():
    a, b = fingerprint(photo(print_seed=1)), fingerprint(photo(shape=TROUSERS, print_seed=2))
    assert hash_distance(a, b) > DEFAULT_THRESHOLDS.max_hash_distance()


def test_another_colourway_of_one_design_is_vetoed_by_colour():
    red, navy = photo(colour=(196, 40, 48), print_seed=5), photo(colour=(28, 40, 92), print_seed=5)
    a, b = fingerprint(red), fingerprint(navy)
    assert colour_distance(a, b) > MAX_COLOUR_DISTANCE
    assert not DEFAULT_THRESHOLDS.is_near_copy(cosine=0.97, hash_distance=hash_distance(a, b), colour_distance=colour_distance(a, b))


def test_same_photo_ranked_keeps_the_copies_of_an_upload_most_certain_first():
    """A 60x80 thumbnail of a listing's photo (cosine 0.6: the CNN barely knows it) is that
    listing's photo; another colourway in one pose and another design are not."""
    original = photo(print_seed=5)
    thumbnail = decoded(jpeg(original.resize((60, 80), Image.Resampling.LANCZOS), quality=75))
    candidates = [
        ("navy", fingerprint(photo(colour=(28, 40, 92), print_seed=5)), 0.97),
        ("trousers", fingerprint(photo(shape=TROUSERS, print_seed=2)), 0.7),
        ("relisted", fingerprint(decoded(jpeg(relisted_copy(original), quality=70))), 0.6),
        ("original", fingerprint(original), 0.6),
    ]
    ranked = same_photo_ranked(fingerprint(thumbnail), candidates)
    assert [key for key, _, _ in ranked][:1] == ["original"]
    assert {key for key, _, _ in ranked} <= {"original", "relisted"}
    assert all(DEFAULT_THRESHOLDS.near_copy <= score <= 1.0 for _, score, _ in ranked)
    assert [score for _, score, _ in ranked] == sorted((score for _, score, _ in ranked), reverse=True)
    assert same_photo_ranked(fingerprint(photo(shape=TROUSERS, print_seed=7)), candidates[:1]) == []


def test_score_combines_both_signals():
    assert near_copy_score(cosine=1.0, hash_distance=0) == 1.0
    # A small hash distance carries a blurry thumbnail the CNN barely recognises...
    assert near_copy_score(cosine=0.57, hash_distance=8) >= DEFAULT_THRESHOLDS.near_copy
    # ...a same-pose studio shot of another shirt (close hash, high cosine) stays out...
    assert near_copy_score(cosine=0.95, hash_distance=20) < DEFAULT_THRESHOLDS.near_copy
    # ...and a high cosine alone is never enough.
    assert near_copy_score(cosine=0.99, hash_distance=40) < DEFAULT_THRESHOLDS.near_copy
    assert DEFAULT_THRESHOLDS.max_hash_distance() == 17


def test_hamming_and_bands():
    fp = fingerprint(photo(print_seed=9))
    assert hamming(fp.phash, fp.phash) == 0
    bands = fp.bands()
    assert len(bands) == 32 and len(set(bands)) == 32  # tagged: equal chunks of different bands differ


def test_precision_recall_and_curve():
    import numpy as np

    pos, neg = np.array([0.9, 0.8, 0.3]), np.array([0.1, 0.85])
    assert precision_recall(pos, neg, 0.8) == (2 / 3, 2 / 3)
    thresholds, precision, recall = pr_curve(pos, neg)
    assert thresholds[0] == 0.9 and precision[0] == 1.0 and recall[-1] == 1.0

"""The lab's mirror of serving's same-photo pin (``lab.evaluation.matching.same_photo_rows``, ``_pinned``)."""

import numpy as np
from PIL import Image

from lab.evaluation import matching
from tests.visualsearch.duplicates.photos import TROUSERS, photo
from visualsearch.duplicates.detection import fingerprint, upload_fingerprint


def test_a_thumbnail_is_pinned_to_its_own_photo_and_nothing_else_is_pinned():
    shots = [photo(print_seed=1), photo(shape=TROUSERS, print_seed=2), photo(print_seed=3), photo(colour=(28, 40, 92), print_seed=3)]
    gallery = [fingerprint(shot) for shot in shots]
    gallery_vectors = np.eye(len(shots), 8, dtype=np.float32)
    thumbnail = shots[2].resize((60, 80), Image.Resampling.LANCZOS)
    unlisted = photo(shape=TROUSERS, print_seed=9)
    queries = [upload_fingerprint(thumbnail), upload_fingerprint(unlisted)]
    # The thumbnail's embedding is closer to the navy colourway (cosine 0.8) than to its own photo (0.6).
    query_vectors = np.array([0.6 * gallery_vectors[2] + 0.8 * gallery_vectors[3], gallery_vectors[1]], dtype=np.float32)
    pins = matching.same_photo_rows(queries, query_vectors, gallery, gallery_vectors)
    assert pins.tolist() == [2, -1]
    scores = query_vectors @ gallery_vectors.T
    assert scores[0].argmax() == 3 and matching._pinned(scores, pins)[0].argmax() == 2
    assert np.array_equal(matching._pinned(scores, pins)[1], scores[1])
    assert matching._pinned(scores, None) is scores
    assert matching.same_photo_rows([], query_vectors[:0], gallery, gallery_vectors).tolist() == []


def test_a_large_upload_is_hashed_reduced_and_stays_near_its_photo():
    shot = photo(print_seed=4)
    large = shot.resize((1800, 2400), Image.Resampling.BICUBIC)
    pins = matching.same_photo_rows([upload_fingerprint(large)], np.ones((1, 2), np.float32) / np.sqrt(2),
                                    [fingerprint(shot)], np.ones((1, 2), np.float32) / np.sqrt(2))
    assert pins.tolist() == [0]

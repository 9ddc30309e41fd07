"""The lab embeds its queries as serving embeds a shopper's photo (``Encoder.for_queries``,
``Embedder.embed_queries``: the model's query crop) and its galleries as the catalogue."""

from __future__ import annotations

import numpy as np
import pytest

from lab.evaluation import matching
from lab.evaluation.quality import encoder_for
from tests.visualsearch.duplicates.photos import TROUSERS, photo
from visualsearch.embedding import clear_cache, load_embedder
from visualsearch.embedding.config import EmbeddingSettings


@pytest.fixture
def shots(tmp_path):
    paths = []
    for n, shot in enumerate([photo(print_seed=1), photo(shape=TROUSERS, print_seed=2)]):
        paths.append(tmp_path / f"{n}.png")
        shot.save(paths[-1])
    return paths


def test_a_model_without_a_query_crop_embeds_queries_like_the_catalogue():
    encoder = encoder_for("efficientnet_lite0")
    assert encoder.encode_query is None and encoder.for_queries() is encoder


def test_queries_take_the_crop_and_galleries_do_not(monkeypatch, shots, tmp_path):
    from PIL import Image

    plain = encoder_for("efficientnet_lite0")
    monkeypatch.setattr(EmbeddingSettings, "query_crop_share", lambda self, metadata: 0.8)
    clear_cache()
    try:
        encoder = encoder_for("efficientnet_lite0")
        queries = encoder.for_queries()
        # The catalogue's vectors are the same as without a crop (same cache); the queries' are other vectors.
        assert encoder.fingerprint == plain.fingerprint and queries.fingerprint != encoder.fingerprint
        assert "centre crop 0.8" in encoder.description and encoder.derive is None
        groups = {"gallery": shots, "views": shots, "select_gallery": shots[:1], "consumer": shots[1:]}
        for _ in range(2):  # the second time from the caches, the same rows
            vectors = matching._encode("efficientnet_lite0", groups, tmp_path / "cache", print)
            embedder = load_embedder("efficientnet_lite0")
            images = [Image.open(p) for p in shots]
            np.testing.assert_allclose(vectors["gallery"], embedder.embed(images), atol=1e-5)
            np.testing.assert_allclose(vectors["select_gallery"], embedder.embed(images[:1]), atol=1e-5)
            np.testing.assert_allclose(vectors["views"], embedder.embed_queries(images), atol=1e-5)
            np.testing.assert_allclose(vectors["consumer"], embedder.embed_queries(images[1:]), atol=1e-5)
        assert np.all(np.sum(vectors["views"] * vectors["gallery"], axis=1) < 0.9999)
    finally:
        clear_cache()

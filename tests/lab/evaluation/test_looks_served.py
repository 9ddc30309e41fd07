"""Shop the look's retrieval "as served" (``lab.evaluation.looks._served_retrieval``): the
ranking serving uses, with the shipped model's recorded category term."""

from pathlib import Path

import numpy as np

from lab.datasets import CatalogItem
from lab.evaluation.looks import _served_retrieval
from visualsearch.embedding import DEFAULT_MODEL
from visualsearch.photos import search_settings


def _unit(values: np.ndarray) -> np.ndarray:
    return (values / np.linalg.norm(values, axis=-1, keepdims=True)).astype(np.float32)


def test_a_photo_of_one_product_is_found_as_served_as_it_is_plain():
    rng = np.random.default_rng(3)
    gallery = [
        CatalogItem(id=str(n), path=Path(f"{n}.jpg"), article_type=kind, sub_category="Topwear", master_category="Apparel", gender="Men")
        for n, kind in enumerate(["Tshirts", "Shirts", "Jeans"] * 20)
    ]
    vectors = _unit(rng.normal(size=(len(gallery), 256)))
    targets = [5, 17, 42]
    close = _unit(vectors[targets] + 0.05 * rng.normal(size=(3, 256)))  # cosine ~0.99: above the gate
    far = _unit(rng.normal(size=(3, 256)))  # a photo of nothing in the gallery
    out = _served_retrieval(DEFAULT_MODEL, {"true_box": list(close), "whole": list(far), "auto": []}, targets, vectors, gallery)
    tuned = search_settings(DEFAULT_MODEL)
    assert (out["category_weight"], out["category_gate"]) == (tuned.category_weight, tuned.category_gate) and tuned.category_weight > 0
    assert out["true_box"] == {"r1": 1.0, "r10": 1.0, "n": 3}  # a near-identical photo stays first
    assert out["whole"]["n"] == 3 and "auto" not in out  # no queries, no row

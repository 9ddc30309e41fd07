"""The model shipped in the repository is the default, loads with nothing trained here, and is
what its card says it is."""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from config.settings import base
from visualsearch.embedding import DEFAULT_MODEL, available_models, current_settings, load_embedder
from visualsearch.embedding.config import PREVIOUS_MODEL, SHIPPED_MODELS_DIR, is_shipped
from visualsearch.photos import DEFAULT_CATEGORY_WEIGHT, search_settings

from .helpers import clean_embedding_config  # noqa: F401  (autouse fixture)
from .helpers import picture

MAX_FILE_BYTES = 2_000_000


def test_the_default_model_is_the_shipped_one_everywhere() -> None:
    assert is_shipped(DEFAULT_MODEL)
    assert current_settings().active_model == DEFAULT_MODEL
    assert DEFAULT_MODEL in available_models()  # with an empty models directory
    if "VISUALSEARCH_MODEL" not in os.environ:
        assert base.VISUALSEARCH_MODEL == DEFAULT_MODEL  # Django's default names the same model


def test_shipped_files_are_small_half_precision_and_carded() -> None:
    folder = SHIPPED_MODELS_DIR / DEFAULT_MODEL
    names = {p.name for p in folder.iterdir()}
    assert {"weights.pt", "metadata.json", "categories.npz", "MODEL_CARD.md"} <= names
    assert all(p.stat().st_size < MAX_FILE_BYTES for p in folder.iterdir())
    for part in folder.glob("weights*.pt"):  # the trained block's weights are a second file
        state = torch.load(part, map_location="cpu", weights_only=True)
        # Matrices and kernels in float16; models shipped since v10 keep the 1-D tensors float32.
        assert {v.dtype for v in state.values() if v.is_floating_point() and v.dim() > 1} == {torch.float16}
        assert {v.dtype for v in state.values() if v.is_floating_point() and v.dim() <= 1} <= {torch.float16, torch.float32}
    metadata = json.loads((folder / "metadata.json").read_text())
    # ship_model scored float32 and float16 on the hold-out (each from its own weights, with the
    # same search settings): the bar is no hold-out metric changed at the third decimal
    # (v9, all float16 and its own settings, missed it by one query's worth; v10 meets it).
    comparison = metadata["shipped"]["float16_vs_float32"]
    assert comparison["float16"].keys() == comparison["float32"].keys()
    assert all(abs(comparison["float16"][k] - comparison["float32"][k]) <= 0.0015 for k in comparison["float16"])
    assert comparison["differ_at_third_decimal"] == {}
    # The search settings were chosen for the model as it serves: by ship_model on its float32
    # original, or (v10 since mirror averaging, its float32 weights not kept) on the shipped weights.
    assert metadata["search"].get("chosen_for", DEFAULT_MODEL) in (DEFAULT_MODEL, f"{DEFAULT_MODEL}-fp32")
    assert metadata["holdout"]["products"] > 1000 and metadata["search"]["colour_weight"] >= 0
    card = (folder / "MODEL_CARD.md").read_text()
    assert "make train" in card and "Hold-out metrics" in card


def test_the_default_embeds_and_guesses_categories_with_nothing_trained_here() -> None:
    embedder = load_embedder()
    assert embedder.name == DEFAULT_MODEL and embedder.dim == 256
    assert embedder.mirror_average  # measured better that way on the hold-out and the training side
    assert embedder.query_crop == 0.8  # a shopper's photo searched with its centre crop too: measured the same way
    vectors = embedder.embed([picture(1), picture(2)])
    assert vectors.shape == (2, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    guesses = embedder.category_head.top(vectors[0])
    assert guesses and all(0.0 <= p <= 1.0 for _, p in guesses)
    assert abs(sum(embedder.category_head.probabilities(vectors[:1])[0]) - 1.0) < 1e-4


def test_the_shipped_model_searches_with_the_terms_the_lab_measured() -> None:
    """Serving reads the colour weight, the category term and the floor recorded beside the
    model (``evaluate_matching --record``), not the defaults for unmeasured models."""
    recorded = json.loads((SHIPPED_MODELS_DIR / DEFAULT_MODEL / "metadata.json").read_text())["search"]
    tuned = search_settings(DEFAULT_MODEL)
    assert (tuned.colour_weight, tuned.category_weight, tuned.category_gate, tuned.relevance_floor) == (
        recorded["colour_weight"], recorded["category_weight"], recorded["category_gate"], recorded["relevance_floor"]
    )
    assert tuned.category_weight > DEFAULT_CATEGORY_WEIGHT and tuned.category_gate > 0.0  # a gate above 1: always on


def test_the_model_shipped_before_still_loads_for_a_roll_back() -> None:
    """A deployment that promoted the previous default keeps serving it after an upgrade."""
    assert is_shipped(PREVIOUS_MODEL) and PREVIOUS_MODEL in available_models()
    previous, default = load_embedder(PREVIOUS_MODEL), load_embedder(DEFAULT_MODEL)
    assert previous.dim == default.dim == 256
    a, b = previous.embed([picture(3)]), default.embed([picture(3)])
    assert a.shape == b.shape == (1, 256) and not np.allclose(a, b)

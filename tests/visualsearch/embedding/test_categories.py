"""The category classifier's file: a hidden layer or none, float16 matrices, the same decisions."""

from __future__ import annotations

import numpy as np

from visualsearch.embedding.categories import CategoryHead, load_category_head, save_category_head


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _head(rng: np.random.Generator, hidden: int | None, dim: int = 32, classes: int = 6) -> CategoryHead:
    width = hidden or dim
    return CategoryHead(
        labels=tuple(f"type{n}" for n in range(classes)),
        weight=rng.standard_normal((classes, width)).astype(np.float32) * 3,
        bias=rng.standard_normal(classes).astype(np.float32),
        temperature=1.5,
        auto_threshold=0.55,
        info={"trained_on": {"hidden": hidden or 0}},
        hidden_weight=rng.standard_normal((hidden, dim)).astype(np.float32) / np.sqrt(dim) if hidden else None,
        hidden_bias=rng.standard_normal(hidden).astype(np.float32) * 0.1 if hidden else None,
    )


def test_a_hidden_layer_is_a_relu_before_the_softmax() -> None:
    rng = np.random.default_rng(0)
    head = _head(rng, hidden=16)
    vectors = _unit(rng, 5, 32)
    hidden = np.maximum(vectors.astype(np.float64) @ head.hidden_weight.T + head.hidden_bias, 0.0)
    logits = (hidden @ head.weight.T + head.bias) / head.temperature
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(head.probabilities(vectors), expected, atol=1e-5)
    assert head.dim == 32
    assert [label for label, _ in head.top(vectors[0], k=2)] == [head.labels[i] for i in np.argsort(-expected[0])[:2]]


def test_saved_and_loaded_with_or_without_a_hidden_layer(tmp_path) -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 400, 32)
    for hidden, folder in ((16, tmp_path / "mlp"), (None, tmp_path / "linear")):
        folder.mkdir()
        head = _head(rng, hidden)
        save_category_head(folder, head)
        loaded = load_category_head(folder)
        assert loaded.labels == head.labels and loaded.dim == 32
        assert (loaded.temperature, loaded.auto_threshold, loaded.info) == (1.5, 0.55, head.info)
        assert (loaded.hidden_weight is None) == (hidden is None)
        # float16 matrices: probabilities within 1e-2, the same guess where it is not a near tie.
        before, after = head.probabilities(vectors), loaded.probabilities(vectors)
        assert np.abs(before - after).max() < 1e-2
        top2 = np.sort(before, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 1e-2
        assert (before.argmax(1) == after.argmax(1))[clear].all()
    assert load_category_head(tmp_path / "none") is None

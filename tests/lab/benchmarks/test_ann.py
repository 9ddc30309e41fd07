import numpy as np

from lab.benchmarks.ann import pick_ef_search, vector_model_default, vector_model_fit, vectors_sample


def test_samples_are_unit_rows_and_reproducible():
    model = vector_model_default(64, seed=1, components=8)
    a = np.concatenate(list(vectors_sample(model, 250, seed=3, stream=7, chunk=100)))
    b = np.concatenate(list(vectors_sample(model, 250, seed=3, stream=7, chunk=100)))
    assert a.shape == (250, 64) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    other = next(vectors_sample(model, 100, seed=3, stream=8, chunk=100))
    assert not np.array_equal(a[:100], other)


def test_fitted_model_keeps_the_real_mean_direction():
    rng = np.random.default_rng(0)
    real = np.abs(rng.standard_normal((300, 32))).astype(np.float32) + np.linspace(0, 2, 32, dtype=np.float32)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    model = vector_model_fit(real, components=8)
    sample = next(vectors_sample(model, 2000, seed=0, stream=0, chunk=2000))
    mean_real, mean_sample = real.mean(0), sample.mean(0)
    cosine = mean_real @ mean_sample / np.linalg.norm(mean_real) / np.linalg.norm(mean_sample)
    assert cosine > 0.99
    assert "300 real embeddings" in model.source


def test_pick_ef_search_needs_the_target_at_every_size():
    sizes = [
        {"halfvec": {"hnsw": {"40": {"recall_at_10": 0.97}, "100": {"recall_at_10": 0.99}}}},
        {"halfvec": {"hnsw": {"40": {"recall_at_10": 0.93}, "100": {"recall_at_10": 0.96}}}},
    ]
    assert pick_ef_search(sizes, 0.95) == 100
    assert pick_ef_search(sizes, 0.999) is None

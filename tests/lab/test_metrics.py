import numpy as np
import pytest

from lab.metrics import (
    exact_top_k,
    grouped_mean,
    l2_normalise,
    macro_mean,
    neighbour_recall,
    percentiles,
    precision_at_k,
    recall_at_k,
    top_k_one,
)


def test_recall_at_k_counts_a_query_once_whatever_the_number_of_hits():
    ranking = [[3, 1, 2], [0, 5, 6], [7, 8, 9]]
    correct = [{1, 2}, {9}, {7}]
    assert recall_at_k(ranking, correct, (1, 2, 3)) == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 3: pytest.approx(2 / 3)}


def test_recall_at_k_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        recall_at_k([[1]], [{1}, {2}], (1,))


def test_precision_at_k_counts_missing_places_as_misses():
    relevant = np.array([True, False, True, True])
    values = precision_at_k([[0, 1, 2, 3], [2]], [relevant, relevant], 4)
    assert values.tolist() == [0.75, 0.25]


def test_exact_top_k_matches_a_full_sort_across_blocks():
    rng = np.random.default_rng(0)
    gallery = l2_normalise(rng.standard_normal((537, 16)))
    queries = l2_normalise(rng.standard_normal((9, 16)))
    expected = np.argsort(-(queries @ gallery.T), axis=1, kind="stable")[:, :7]
    assert np.array_equal(exact_top_k(queries, gallery, 7, block=100), expected)
    assert np.array_equal(top_k_one(gallery, queries[0], 7), expected[0])


def test_exact_top_k_breaks_ties_by_row():
    gallery = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    assert exact_top_k(np.array([[1.0, 0.0]]), gallery, 2, block=1).tolist() == [[0, 2]]


def test_neighbour_recall_is_the_share_of_true_neighbours_found():
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert neighbour_recall([[1, 2, 9, 10], [8, 7, 6, 5]], truth, 4) == pytest.approx((0.5 + 1.0) / 2)


def test_percentiles_and_empty_input():
    assert percentiles(np.arange(1, 101))["p50"] == pytest.approx(50.5)
    assert np.isnan(percentiles([])["p95"])


def test_grouped_and_macro_means():
    groups = grouped_mean(np.array([1.0, 0.0, 0.5]), ["b", "a", "b"])
    assert groups == {"a": {"n": 1, "mean": 0.0}, "b": {"n": 2, "mean": 0.75}}
    assert macro_mean(groups) == pytest.approx(0.375)

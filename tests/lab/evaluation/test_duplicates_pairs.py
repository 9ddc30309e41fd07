"""Which pairs the labelled duplicate evaluation counts as negatives (no images decoded)."""

import csv

import numpy as np
import pytest

import lab.datasets
from lab.datasets import DUPLICATE_AUDIT_PATH, csv_rows, same_photo_pairs
from lab.evaluation.duplicates import EvalConfig, hardest_pairs, plan


def _write(path, header, rows):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def tiny_catalog(tmp_path, monkeypatch):
    """Four shirts of one type and colour: 1 and 2 byte-identical (listed by the data's scan),
    3 and 4 one photo at two zooms (the audit's kind of pair)."""
    _write(
        tmp_path / "labels.csv",
        ["id", "articleType", "baseColour", "image"],
        [[str(i), "Shirts", "White", f"images/{i}.jpg"] for i in range(1, 5)],
    )
    _write(tmp_path / "duplicates.csv", ["id", "variant", "image_a", "image_b"], [["1", "resized", "images/1.jpg", "variants/1.jpg"]])
    _write(tmp_path / "catalog_duplicate_candidates.csv", ["id_a", "id_b"], [["1", "2"]])
    audit = tmp_path / "audit.csv"
    _write(audit, ["id_a", "id_b", "verdict", "checked", "evidence"], [["4", "3", "same photograph", "2026-12-07", "zoom"]])
    monkeypatch.setattr(lab.datasets, "DUPLICATE_AUDIT_PATH", audit)
    return tmp_path


def test_audited_and_listed_pairs_are_never_negatives(tiny_catalog):
    listed, audited = same_photo_pairs(tiny_catalog)
    assert listed == {frozenset(("1", "2"))} and audited == {frozenset(("3", "4"))}
    p = plan(EvalConfig(data_dir=tiny_catalog, pool_extra=10, negatives=100, synthetic=0))
    # Six pairs among four shirts, less the two that show one photo each.
    assert sorted(p["negatives"]) == [("1", "3"), ("1", "4"), ("2", "3"), ("2", "4")]
    assert p["audited"] == {frozenset(("3", "4"))}


def test_a_hardest_pair_drawn_at_random_too_counts_once():
    vectors = {"a": [1.0, 0.0], "b": [0.99, 0.14], "c": [0.0, 1.0], "d": [0.1, 0.99]}
    groups = {("Shirts", "White"): ["a", "b", "c", "d"]}

    def vector(m):
        return np.asarray(vectors[m])

    assert hardest_pairs(groups, vector, listed=set()) == [("a", "b"), ("c", "d")]
    assert hardest_pairs(groups, vector, listed=set(), drawn=[("b", "a")]) == [("c", "d")]
    # A listed pair (one photo) is skipped: the next most similar product is the hardest.
    assert hardest_pairs(groups, vector, listed={frozenset(("c", "d"))}) == [("a", "b"), ("b", "c"), ("b", "d")]


def test_the_audit_file_names_catalogue_ids_with_a_reason(shared_catalog):
    ids = {row["id"] for row in csv_rows(shared_catalog / "labels.csv")}
    rows = csv_rows(DUPLICATE_AUDIT_PATH)
    assert rows
    for row in rows:
        assert {row["id_a"], row["id_b"]} <= ids and row["id_a"] != row["id_b"]
        assert row["verdict"] == "same photograph" and row["evidence"] and row["checked"]

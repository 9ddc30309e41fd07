"""The hold-out split: deterministic, proportional, copies kept together, consumer photos by contributor."""

from __future__ import annotations

import csv

import pytest

from lab.split import HoldoutSplit, duplicate_groups, ids_digest, unit_hash


def test_unit_hash_is_stable_and_in_range() -> None:
    # A fixed value: the split must be the same on every machine and Python version.
    assert unit_hash("vitrine-holdout-v1:product", "10000") == pytest.approx(unit_hash("vitrine-holdout-v1:product", "10000"))
    values = [unit_hash("s", str(i)) for i in range(2000)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert unit_hash("s", "1") != unit_hash("t", "1")


def test_product_fraction_is_respected_and_deterministic() -> None:
    ids = [str(10000 + i) for i in range(5000)]
    split = HoldoutSplit(product_fraction=0.2)
    held = split.product_holdout(ids)
    assert 0.18 < len(held) / len(ids) < 0.22
    assert held == HoldoutSplit(product_fraction=0.2).product_holdout(list(reversed(ids)))
    assert held != HoldoutSplit(salt="other", product_fraction=0.2).product_holdout(ids)


def test_copies_of_one_photo_land_on_the_same_side(tmp_path) -> None:
    ids = [str(i) for i in range(1, 401)]
    pairs = [(str(i), str(i + 1)) for i in range(1, 400, 2)]  # 200 pairs of copies
    with open(tmp_path / "catalog_duplicate_candidates.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id_a", "id_b"])
        writer.writerows(pairs)
    held = HoldoutSplit(product_fraction=0.5).product_holdout(ids, tmp_path)
    assert 0 < len(held) < len(ids)
    for a, b in pairs:
        assert (a in held) == (b in held)


def test_duplicate_groups_use_the_smallest_id() -> None:
    groups = duplicate_groups(["5", "3", "9", "12", "7"], [("9", "3"), ("12", "9"), ("7", "99")])
    assert groups == {"5": "5", "3": "3", "9": "3", "12": "3", "7": "7"}


def test_consumer_photos_are_held_out_by_contributor() -> None:
    split = HoldoutSplit(consumer_fraction=0.5)
    senders = [str(s) for s in range(400)]
    held = [s for s in senders if split.consumer_is_holdout(s, "photo-a")]
    assert 0.4 < len(held) / len(senders) < 0.6
    # Every photo of one contributor goes the same way.
    for s in senders[:50]:
        assert split.consumer_is_holdout(s, "photo-a") == split.consumer_is_holdout(s, "photo-b")


def test_round_trip_and_validation() -> None:
    split = HoldoutSplit(salt="x", product_fraction=0.3, consumer_fraction=0.4)
    assert HoldoutSplit.from_dict({**split.to_dict(), "products": 12}) == split
    with pytest.raises(ValueError, match="product_fraction"):
        HoldoutSplit(product_fraction=1.5)
    assert ids_digest(["2", "10", "1"]) == ids_digest(["1", "2", "10"]) != ids_digest(["1", "2"])

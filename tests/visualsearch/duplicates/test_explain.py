"""The queue's plain-words evidence (no database)."""

from decimal import Decimal
from types import SimpleNamespace

from visualsearch.duplicates.selectors import duplicate_flag_explain, duplicate_pair_differences


def test_exact_copies_say_same_file():
    assert duplicate_flag_explain(kind="exact", evidence={}, hash_distance=0) == "The very same image file."


def test_verified_copies_name_the_edits_and_the_points():
    evidence = {"decided_by": "verification", "verification": {"inliers": 212, "edits": ["mirrored", "cropped", "text or a logo added"]}}
    text = duplicate_flag_explain(kind="near", evidence=evidence, hash_distance=90)
    assert text == "Same photo, mirrored, cropped and text or a logo added; 212 matching points line up."


def test_hash_matches_read_as_resized_copies():
    assert duplicate_flag_explain(kind="near", evidence={"decided_by": "hash"}, hash_distance=2).startswith("Same photo, re-encoded")
    assert "fingerprints almost match" in duplicate_flag_explain(kind="near", evidence={}, hash_distance=12)


def test_differences_name_price_colour_merchant_and_title_words():
    north, south = SimpleNamespace(name="Northwind"), SimpleNamespace(name="Southwind")
    a = SimpleNamespace(price=Decimal("799"), currency="INR", colour="Red", merchant_id=1, merchant=north, category_id=1, category="Tees", title="Red tee")
    b = SimpleNamespace(price=Decimal("699"), currency="INR", colour="red", merchant_id=2, merchant=south, category_id=1, category="Tees", title="Red tee best price")
    assert duplicate_pair_differences(a=a, b=b) == ["price 799 INR vs 699 INR", "merchant Northwind vs Southwind", "title words — vs best price"]
    assert duplicate_pair_differences(a=a, b=a) == []

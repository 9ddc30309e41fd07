"""The queue's plain-words evidence (no database)."""

from visualsearch.duplicates.selectors import duplicate_flag_explain


def test_exact_copies_say_same_file():
    assert duplicate_flag_explain(kind="exact", evidence={}, hash_distance=0) == "The very same image file."


def test_verified_copies_name_the_edits_and_the_points():
    evidence = {"decided_by": "verification", "verification": {"inliers": 212, "edits": ["mirrored", "cropped", "text or a logo added"]}}
    text = duplicate_flag_explain(kind="near", evidence=evidence, hash_distance=90)
    assert text == "Same photo, mirrored, cropped and text or a logo added; 212 matching points line up."


def test_hash_matches_read_as_resized_copies():
    assert duplicate_flag_explain(kind="near", evidence={"decided_by": "hash"}, hash_distance=2).startswith("Same photo, re-encoded")
    assert "fingerprints almost match" in duplicate_flag_explain(kind="near", evidence={}, hash_distance=12)

"""Triplet mining on hand-made embeddings: the negative each rule must pick, and the hinge value."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lab.training.losses import category_loss, triplet_loss


def unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


# One anchor; gallery: its positive (row 0) and three negatives at known cosines.
ANCHOR = unit([1.0, 0.0])
COS = {"pos": 0.8, "hard": 0.95, "semi": 0.7, "easy": 0.1}


def gallery_at(*cosines):
    return torch.tensor([[c, (1 - c * c) ** 0.5] for c in cosines], dtype=torch.float32)


GALLERY = gallery_at(COS["pos"], COS["hard"], COS["semi"], COS["easy"])
ALL_NEG = torch.tensor([[False, True, True, True]])


def test_batch_hard_uses_the_most_similar_negative() -> None:
    loss, stats = triplet_loss(ANCHOR, GALLERY, torch.tensor([0]), ALL_NEG, margin=0.2)
    assert loss.item() == pytest.approx(0.2 + COS["hard"] - COS["pos"], abs=1e-5)
    assert stats["active"] == 1.0
    assert stats["neg_sim"] == pytest.approx(COS["hard"], abs=1e-5)


def test_semi_hard_uses_the_hardest_negative_farther_than_the_positive() -> None:
    loss, _ = triplet_loss(ANCHOR, GALLERY, torch.tensor([0]), ALL_NEG, margin=0.2, mining="semi-hard")
    assert loss.item() == pytest.approx(0.2 + COS["semi"] - COS["pos"], abs=1e-5)
    # No semi-hard negative (margin too small to reach 0.7): falls back to the hardest.
    loss, _ = triplet_loss(ANCHOR, GALLERY, torch.tensor([0]), ALL_NEG, margin=0.05, mining="semi-hard")
    assert loss.item() == pytest.approx(0.05 + COS["hard"] - COS["pos"], abs=1e-5)


def test_same_type_negatives_are_preferred_when_present() -> None:
    same = torch.tensor([[True, False, True, False]])  # only the 0.7 negative shares the type
    loss, stats = triplet_loss(ANCHOR, GALLERY, torch.tensor([0]), ALL_NEG, margin=0.2, same_type=same)
    assert loss.item() == pytest.approx(0.2 + COS["semi"] - COS["pos"], abs=1e-5)
    assert stats["same_type_negatives"] == 1.0
    # No negative of the same type in the batch: mined among all.
    none_same = torch.tensor([[True, False, False, False]])
    loss, stats = triplet_loss(ANCHOR, GALLERY, torch.tensor([0]), ALL_NEG, margin=0.2, same_type=none_same)
    assert loss.item() == pytest.approx(0.2 + COS["hard"] - COS["pos"], abs=1e-5)
    assert stats["same_type_negatives"] == 0.0


def test_excluded_negatives_and_satisfied_margins_give_no_loss() -> None:
    only_easy = torch.tensor([[False, False, False, True]])  # e.g. rows 1-2 are copies of the anchor's photo
    loss, stats = triplet_loss(ANCHOR, GALLERY, torch.tensor([0]), only_easy, margin=0.2)
    assert loss.item() == 0.0 and stats["active"] == 0.0
    # An anchor with no allowed negative is left out of the mean rather than counted as zero.
    anchors = torch.cat([ANCHOR, ANCHOR])
    mask = torch.tensor([[False, True, True, True], [False, False, False, False]])
    loss, _ = triplet_loss(anchors, GALLERY, torch.tensor([0, 0]), mask, margin=0.2)
    assert loss.item() == pytest.approx(0.2 + COS["hard"] - COS["pos"], abs=1e-5)


def test_batch_hard_loss_has_gradients_that_separate() -> None:
    torch.manual_seed(0)
    anchors = torch.randn(6, 4, requires_grad=True)
    gallery = torch.randn(6, 4)
    mask = ~torch.eye(6, dtype=torch.bool)
    loss, _ = triplet_loss(F.normalize(anchors, dim=1), F.normalize(gallery, dim=1), torch.arange(6), mask, margin=0.5)
    loss.backward()
    assert anchors.grad is not None and anchors.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="mining"):
        triplet_loss(ANCHOR, GALLERY, torch.tensor([0]), ALL_NEG, margin=0.2, mining="random")


def test_category_loss_compares_the_top_k_accepted_with_the_hardest_wrong_type() -> None:
    gallery = gallery_at(0.9, 0.6, 0.8, 0.2)
    accepted = torch.tensor([[True, True, False, False]])
    loss, stats = category_loss(ANCHOR, gallery, accepted, margin=0.1, top_k=2)
    assert loss.item() == pytest.approx(0.1 + 0.8 - (0.9 + 0.6) / 2, abs=1e-5)
    assert stats["active"] == 1.0
    # A photo whose label has no accepted row in the candidates is skipped.
    loss, stats = category_loss(ANCHOR, gallery, torch.zeros(1, 4, dtype=torch.bool), margin=0.1)
    assert loss.item() == 0.0 and stats["active"] == 0.0


def test_without_preference_the_same_type_share_is_still_reported() -> None:
    same = torch.tensor([[True, False, True, False]])
    loss, stats = triplet_loss(ANCHOR, GALLERY, torch.tensor([0]), ALL_NEG, margin=0.2, same_type=same, prefer_same_type=False)
    assert loss.item() == pytest.approx(0.2 + COS["hard"] - COS["pos"], abs=1e-5)  # the hardest, of another type
    assert stats["same_type_negatives"] == 0.0

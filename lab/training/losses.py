"""Triplet losses with in-batch mining, on cosine similarities of L2-normalised embeddings.

Distance is ``1 - cosine``, so a margin of 0.2 asks the positive to be 0.2 more similar
than the mined negative. Anchors are queries (consumer-like views, real second images);
the gallery is the batch's shop photos: the retrieval problem itself.
"""

from __future__ import annotations

import torch

MINING = ("batch-hard", "semi-hard")


def triplet_loss(
    anchors: torch.Tensor,
    gallery: torch.Tensor,
    positive: torch.Tensor,
    negative_ok: torch.Tensor,
    margin: float,
    mining: str = "batch-hard",
    same_type: torch.Tensor | None = None,
    prefer_same_type: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Hinge ``max(0, margin + s(a, n) - s(a, p))`` averaged over anchors with a negative.

    * ``positive``: (A,) gallery row of each anchor's own product.
    * ``negative_ok``: (A, G) bool, which gallery rows may serve as negatives (another
      product, and not a copy of the same photo).
    * ``mining``: ``batch-hard`` takes the most similar negative; ``semi-hard`` the most
      similar one that is still less similar than the positive but within the margin
      (FaceNet), falling back to the hardest when there is none.
    * ``same_type``: (A, G) bool, products of the anchor's own fine category (articleType).
      With ``prefer_same_type``, negatives are mined among those whenever the batch holds
      one, else among all; either way the share of same-type mined negatives is reported.

    Returns the loss and statistics: share of anchors with a non-zero loss, share of mined
    negatives of the same type, mean positive and negative similarity.
    """
    if mining not in MINING:
        raise ValueError(f"mining must be one of {MINING}, got {mining!r}")
    sims = anchors @ gallery.T
    rows = torch.arange(len(anchors), device=anchors.device)
    s_pos = sims[rows, positive]
    mask = negative_ok.clone()
    if same_type is not None and prefer_same_type:
        preferred = mask & same_type
        use = preferred.any(dim=1, keepdim=True)
        mask = torch.where(use, preferred, mask)
    if mining == "semi-hard":
        semi = mask & (sims < s_pos[:, None]) & (sims > s_pos[:, None] - margin)
        use = semi.any(dim=1, keepdim=True)
        mask = torch.where(use, semi, mask)
    has_negative = mask.any(dim=1)
    masked = sims.masked_fill(~mask, float("-inf"))
    s_neg, neg_index = masked.max(dim=1)
    losses = torch.relu(margin + s_neg - s_pos)[has_negative]
    loss = losses.mean() if len(losses) else sims.sum() * 0.0
    stats: dict[str, float] = {
        "active": float((losses > 0).float().mean()) if len(losses) else 0.0,
        "pos_sim": float(s_pos.detach().mean()),
        "neg_sim": float(s_neg[has_negative].detach().mean()) if bool(has_negative.any()) else 0.0,
    }
    if same_type is not None and bool(has_negative.any()):
        stats["same_type_negatives"] = float(same_type[rows, neg_index][has_negative].float().mean())
    return loss, stats


def instance_loss(views: torch.Tensor, originals: torch.Tensor, temperature: float) -> tuple[torch.Tensor, dict[str, float]]:
    """InfoNCE: each edited view must pick its own photo among the batch's photos.

    ``views[i]`` is an edit of ``originals[i]``; every other original is a negative. This
    keeps two photos of different garments of one type apart (the category term alone pulls
    all T-shirt photos together), the property ImageNet features have and a shipped model
    must keep.
    """
    logits = views @ originals.T / temperature
    target = torch.arange(len(views), device=views.device)
    loss = torch.nn.functional.cross_entropy(logits, target)
    return loss, {"instance_top1": float((logits.argmax(dim=1) == target).float().mean())}


def category_loss(
    anchors: torch.Tensor, gallery: torch.Tensor, accepted: torch.Tensor, margin: float, top_k: int = 10
) -> tuple[torch.Tensor, dict[str, float]]:
    """For photos with category labels only: ``max(0, margin + s(a, hardest wrong type) - s_k)``.

    ``accepted`` (A, G) says which gallery rows have an articleType accepted for the photo's
    label; ``s_k`` is the mean similarity of the ``top_k`` most similar accepted rows (the
    places precision@k counts). Anchors with no accepted or no wrong row are skipped.
    """
    sims = anchors @ gallery.T
    usable = accepted.any(dim=1) & (~accepted).any(dim=1)
    if not bool(usable.any()):
        return sims.sum() * 0.0, {"active": 0.0}
    sims, accepted = sims[usable], accepted[usable]
    k = max(1, min(top_k, int(accepted.sum(dim=1).min())))
    s_pos = sims.masked_fill(~accepted, float("-inf")).topk(k, dim=1).values.mean(dim=1)
    s_neg = sims.masked_fill(accepted, float("-inf")).max(dim=1).values
    losses = torch.relu(margin + s_neg - s_pos)
    return losses.mean(), {"active": float((losses > 0).float().mean())}

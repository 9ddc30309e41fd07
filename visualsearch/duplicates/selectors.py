"""Reads for duplicate listings: the review queue, its counts and filters, confirmed pairs."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from shop.models import Category, Merchant, Product
from shop.filters import category_descendant_ids
from visualsearch.duplicates.models import DuplicateFlag, DuplicateFlagAction


@dataclass(frozen=True)
class FlagFilters:
    status: str = DuplicateFlag.Status.OPEN
    kind: str | None = None
    merchant: str | None = None  # slug; either listing's merchant
    category: str | None = None  # slug; either listing's category, descendants included


def confirmed_duplicate_ids(*, product_id: int) -> set[int]:
    """Products confirmed as duplicates of ``product_id`` (either side of a confirmed flag)."""
    pairs = DuplicateFlag.objects.filter(
        Q(product_a_id=product_id) | Q(product_b_id=product_id), status=DuplicateFlag.Status.CONFIRMED
    ).values_list("product_a_id", "product_b_id")
    return {other for pair in pairs for other in pair if other != product_id}


# A kept listing can be hidden later as a copy of a third; follow that many hops, never a loop.
KEPT_CHAIN_MAX = 5


def duplicate_kept_listing(*, product_id: int) -> Product | None:
    """The active listing that stayed when ``product_id`` was hidden as its duplicate (the
    latest confirmed flag that hid it; when that listing was hidden in turn, the one kept
    then), or None: never hidden as a duplicate, or nothing of the chain is active."""
    seen = {product_id}
    for _ in range(KEPT_CHAIN_MAX):
        flag = (
            DuplicateFlag.objects.filter(status=DuplicateFlag.Status.CONFIRMED, hidden_product_id=product_id)
            .select_related("kept_product")
            .order_by("-resolved_at", "-id")
            .first()
        )
        if flag is None or flag.kept_product is None or flag.kept_product_id in seen:
            return None
        if flag.kept_product.status == Product.Status.ACTIVE:
            return flag.kept_product
        product_id = flag.kept_product_id
        seen.add(product_id)
    return None


def _scope(filters: FlagFilters) -> Q:
    """The non-status part of the filters, as one Q."""
    q = Q()
    if filters.kind:
        q &= Q(kind=filters.kind)
    if filters.merchant:
        q &= Q(product_a__merchant__slug=filters.merchant) | Q(product_b__merchant__slug=filters.merchant)
    if filters.category:
        category = Category.objects.filter(slug=filters.category).first()
        ids = category_descendant_ids(category=category) if category else []
        q &= Q(product_a__category_id__in=ids) | Q(product_b__category_id__in=ids)
    return q


def duplicate_flag_list(*, filters: FlagFilters | None = None, reviewer=None) -> QuerySet[DuplicateFlag]:
    """Flags with ``filters.status``, loaded with both listings, merchants, categories and matched images.

    Open flags come by score, highest first, and those ``reviewer`` skipped come last;
    resolved ones come most recently resolved first.
    """
    filters = filters or FlagFilters()
    queryset = DuplicateFlag.objects.filter(_scope(filters), status=filters.status).select_related(
        "product_a__merchant",
        "product_a__category__parent",
        "product_b__merchant",
        "product_b__category__parent",
        "image_a",
        "image_b",
        "resolved_by",
        "kept_product",
        "hidden_product",
    )
    if filters.status == DuplicateFlag.Status.OPEN:
        if reviewer is not None and reviewer.pk is not None:
            skipped = DuplicateFlagAction.objects.filter(
                flag=OuterRef("pk"), action=DuplicateFlagAction.Action.SKIP, actor=reviewer
            )
            return queryset.annotate(skipped=Exists(skipped)).order_by("skipped", "-score", "id")
        return queryset.order_by("-score", "id")
    return queryset.order_by("-resolved_at", "-id")


def duplicate_flag_counts(*, filters: FlagFilters | None = None) -> dict[str, int]:
    """{status: count} under the filters' kind, merchant and category, in one query."""
    filters = filters or FlagFilters()
    return DuplicateFlag.objects.filter(_scope(filters)).aggregate(
        **{status: Count("id", filter=Q(status=status)) for status in DuplicateFlag.Status.values}
    )


def duplicate_flag_get(*, flag_id: int) -> DuplicateFlag | None:
    return DuplicateFlag.objects.select_related("product_a", "product_b").filter(pk=flag_id).first()


def duplicate_filter_choices() -> dict[str, list]:
    """Merchants and categories that appear in flags, for the queue's filter menus."""
    flagged = DuplicateFlag.objects.values("product_a_id")
    flagged_b = DuplicateFlag.objects.values("product_b_id")
    products = Product.objects.filter(Q(id__in=flagged) | Q(id__in=flagged_b))
    merchants = list(Merchant.objects.filter(id__in=products.values("merchant_id")).order_by("name"))
    categories = list(
        Category.objects.filter(id__in=products.values("category_id")).select_related("parent__parent").order_by("name")
    )
    return {"merchants": merchants, "categories": categories}


def duplicate_actions_recent(*, limit: int = 8) -> list[DuplicateFlagAction]:
    """The latest review actions, newest first (the queue's activity panel)."""
    return list(DuplicateFlagAction.objects.select_related("actor", "flag").order_by("-at", "-id")[:limit])


def duplicate_flag_explain(*, kind: str, evidence: dict, hash_distance: int) -> str:
    """The evidence of a flag in a merchandiser's words, e.g. "Same photo, mirrored and
    cropped; 212 matching points." (the numbers stay behind a disclosure in the queue)."""
    if kind == DuplicateFlag.Kind.EXACT:
        return "The very same image file."
    verification = evidence.get("verification") or {}
    if evidence.get("decided_by") == "verification" and verification:
        edits = verification.get("edits") or []
        how = f", {_join(edits)}" if edits else ", edited"
        return f"Same photo{how}; {verification.get('inliers', 0)} matching points line up."
    if hash_distance <= 4:
        return "Same photo, re-encoded or resized."
    return "Same photo, resized or lightly edited (the picture fingerprints almost match)."


def duplicate_flag_matched_box(*, evidence: dict, image) -> dict[str, float] | None:
    """Where the verification's matching points lie in ``image`` (one of the flag's two
    pictures), in its pixels: {"x", "y", "w", "h"}; None when the flag was not verified (or
    before verification recorded regions), or the picture's size is unknown."""
    regions = ((evidence or {}).get("verification") or {}).get("regions") or {}
    box = regions.get(str(getattr(image, "id", "")))
    if not box or len(box) != 4 or not image.width or not image.height:
        return None
    left, upper, right, lower = box
    return {"x": round(left * image.width, 1), "y": round(upper * image.height, 1),
            "w": round(max(0.0, right - left) * image.width, 1), "h": round(max(0.0, lower - upper) * image.height, 1)}


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def duplicate_pair_differences(*, a, b) -> list[str]:
    """What differs between two flagged listings, in words: price, colour, merchant,
    category, and the title words only one of them has. Empty when they agree on all."""
    out = []
    if a.price != b.price or a.currency != b.currency:
        out.append(f"price {a.price} {a.currency} vs {b.price} {b.currency}")
    if (a.colour or "").lower() != (b.colour or "").lower():
        out.append(f"colour {a.colour or '—'} vs {b.colour or '—'}")
    if a.merchant_id != b.merchant_id:
        out.append(f"merchant {a.merchant.name} vs {b.merchant.name}")
    if a.category_id != b.category_id:
        out.append(f"category {a.category} vs {b.category}")
    words_a, words_b = set(a.title.lower().split()), set(b.title.lower().split())
    only_a, only_b = sorted(words_a - words_b), sorted(words_b - words_a)
    if only_a or only_b:
        out.append(f"title words {' '.join(only_a) or '—'} vs {' '.join(only_b) or '—'}")
    return out

"""API shapes for recommendations: the similar-products query and its answer. A result row
extends visualsearch's (``visualsearch.serializers.ProductMatchSerializer``, shared with the
image search) with the listings folded into it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from recommender.selectors import SIMILAR_DEFAULT_K, SimilarProducts
from visualsearch.serializers import ProductMatchSerializer


class SimilarQuerySerializer(serializers.Serializer):
    """Query string of GET /api/products/{id}/similar."""

    k = serializers.IntegerField(
        required=False,
        default=SIMILAR_DEFAULT_K,
        min_value=1,
        max_value=settings.VISUALSEARCH_MAX_K,
        help_text="How many products to return.",
    )
    same_category = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "Only products in the same category as this one; when that category holds fewer than `k` "
            "similar products, its parent category's (then the grandparent's ...) fill the rest."
        ),
    )


class SimilarListSerializer(serializers.Serializer):
    """``{"results": [...], "category_used": ..., "note": ...}``."""

    results = ProductMatchSerializer(many=True)
    category_used = serializers.CharField(
        allow_null=True,
        help_text=(
            "With `same_category`: the slug of the category the results come from, the product's own or, "
            "when that held fewer than `k` similar products, the ancestor that filled the list (its own "
            "products come first). Null without `same_category`."
        )
    )
    note = serializers.CharField(
        allow_blank=True, help_text="Says when the results fell back to a wider category; empty otherwise."
    )


def similar_data(similar: SimilarProducts, *, request: Any) -> dict[str, Any]:
    return SimilarListSerializer(
        {
            "results": similar.matches,
            "category_used": similar.category.slug if similar.category is not None else None,
            "note": similar.note,
        },
        context={"request": request},
    ).data

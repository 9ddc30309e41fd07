"""API shapes for recommendations: the similar-products query and its answer. A result row
extends visualsearch's (``visualsearch.serializers.ProductMatchSerializer``, shared with the
image search) with the listings folded into it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from recommender.selectors import SIMILAR_DEFAULT_K, CompleteLook, SimilarProducts
from visualsearch.serializers import (
    FormValuesSerializer,
    ListingSerializer,
    ProductMatchSerializer,
    StrictBooleanField,
    match_data,
)


class SimilarQuerySerializer(FormValuesSerializer):
    """Query string of GET /api/products/{id}/similar: each value once, none empty
    (``FormValuesSerializer``)."""

    k = serializers.IntegerField(
        required=False,
        default=SIMILAR_DEFAULT_K,
        min_value=1,
        max_value=settings.VISUALSEARCH_MAX_K,
        help_text="How many products to return.",
    )
    same_category = StrictBooleanField(
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
    return {
        "results": [match_data(match, request=request) for match in similar.matches],
        "category_used": similar.category.slug if similar.category is not None else None,
        "note": similar.note,
    }


class LookGroupSerializer(serializers.Serializer):
    """One garment worn in the photo, and the products like it."""

    kind = serializers.ChoiceField(
        choices=["top", "bottom", "full_body", "shoes"], help_text="Where on the person the garment was found."
    )
    label = serializers.CharField(help_text='What it is, as a category name, e.g. "Jeans".')
    category = serializers.CharField(source="category_slug", help_text="The slug of that category.")
    box = serializers.ListField(
        child=serializers.IntegerField(), min_length=4, max_length=4,
        help_text="Left, upper, right, lower: where the garment is, in pixels of the source photo.",
    )
    results = ProductMatchSerializer(source="matches", many=True)


class CompleteLookSerializer(serializers.Serializer):
    """``{"groups": [...], "borrowed_from": ...}``."""

    groups = LookGroupSerializer(many=True)
    borrowed_from = ListingSerializer(
        source="source", allow_null=True,
        help_text=(
            "Null when the groups come from this product's own photo; otherwise the similar product whose "
            "photo they come from (this one's photo shows no other garment)."
        ),
    )
    photo_url = serializers.SerializerMethodField(help_text="The photo the boxes are in; null without groups.")

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_photo_url(self, look: CompleteLook) -> str | None:
        if not look.groups or look.photo is None:
            return None
        request = self.context.get("request")
        url = look.photo.image.url
        return request.build_absolute_uri(url) if request is not None else url


def complete_look_data(look: CompleteLook, *, request: Any) -> dict[str, Any]:
    return CompleteLookSerializer(look, context={"request": request}).data

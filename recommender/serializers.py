"""API input for recommendations. Results use visualsearch's result shape
(``visualsearch.serializers.ProductMatchListSerializer``), shared with the image search."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from recommender.selectors import SIMILAR_DEFAULT_K


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
        required=False, default=False, help_text="Only products in the same category as this one."
    )

"""REST API for recommendations. Views parse, call the selectors, and serialise."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recommender.selectors import product_complete_look, product_similar
from recommender.serializers import (
    CompleteLookSerializer,
    SimilarListSerializer,
    SimilarQuerySerializer,
    complete_look_data,
    similar_data,
)
from shop.selectors import product_get_active
from visualsearch.serializers import THROTTLED, error_response, field_errors_response
from visualsearch.throttles import ScopedThrottle

# Shared by the product endpoints' schemas.
PRODUCT_ID = OpenApiParameter(
    "product_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="A product's `id` (as in search results).",
    examples=[OpenApiExample("A product", value=1)],
)
NO_SUCH_PRODUCT = error_response("No active product with this id (unknown, or hidden).", **{"Unknown or hidden": "No such product."})


class ProductSimilarApi(APIView):
    authentication_classes: list[Any] = []  # public, anonymous, read-only
    permission_classes = [AllowAny]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "similar"

    @extend_schema(
        operation_id="product_similar",
        summary="Products that look like this one",
        description=(
            "The `k` active products whose images are nearest to this product's primary image, best "
            "first; the product itself and its confirmed duplicates are left out, and products showing "
            "the very same photo (the same file) are folded into one result (`also_sold_by`). With "
            "`same_category`, the product's category; when it holds fewer than `k` similar products, "
            "its parent's fill the rest, after the category's own, and `category_used` and `note` say "
            "so. Empty while the product's image has not been embedded yet."
        ),
        parameters=[
            SimilarQuerySerializer,
            PRODUCT_ID,
        ],
        responses={
            200: SimilarListSerializer,
            400: field_errors_response(
                "Invalid `k` or `same_category`.",
                **{"k out of bounds": {"k": ["Ensure this value is less than or equal to 100."]}},
            ),
            404: NO_SUCH_PRODUCT,
            429: THROTTLED,
        },
        tags=["recommendations"],
    )
    def get(self, request: Request, product_id: int) -> Response:
        query = SimilarQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        product = product_get_active(product_id=product_id)  # hidden ones are left out
        if product is None:
            raise NotFound("No such product.")
        similar = product_similar(product=product, **query.validated_data)
        return Response(similar_data(similar, request=request))


class ProductCompleteLookApi(APIView):
    authentication_classes: list[Any] = []  # public, anonymous, read-only
    permission_classes = [AllowAny]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "similar"

    @extend_schema(
        operation_id="product_complete_look",
        summary="Products that complete this product's look",
        description=(
            "The other garments worn in this product's photo (a shirt photographed with jeans: the jeans), "
            "each with active products like it in another category than this product's and of its gender, "
            "best first. When this product's photo shows no other garment, the look of the most similar "
            "product whose photo does is used (`borrowed_from`). Precomputed by the workers when a product's "
            "image is embedded; `groups` is empty when no look is known."
        ),
        parameters=[
            PRODUCT_ID,
        ],
        responses={
            200: CompleteLookSerializer,
            404: NO_SUCH_PRODUCT,
            429: THROTTLED,
        },
        tags=["recommendations"],
    )
    def get(self, request: Request, product_id: int) -> Response:
        product = product_get_active(product_id=product_id)
        if product is None:
            raise NotFound("No such product.")
        return Response(complete_look_data(product_complete_look(product=product), request=request))

"""REST API for visual search. Views parse, call the selector, and serialise."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from shop import images as shop_images
from visualsearch import looks
from visualsearch.forms import photo_upload_handlers, request_too_large
from visualsearch.photos import BadBox
from visualsearch.serializers import (
    ImageSearchResponseSerializer,
    ImageSearchSerializer,
    image_search_data,
)
from visualsearch.throttles import ScopedThrottle

BAD_REQUEST = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="Invalid input: a field name (or `box`) maps to a list of messages.",
    examples=[
        OpenApiExample("Not an image", value={"image": ["The file is not a readable image."]}),
        OpenApiExample("Half a box", value={"box": ["Give all four of x, y, w and h for the box, or none of them."]}),
        OpenApiExample("k out of bounds", value={"k": ["Ensure this value is less than or equal to 100."]}),
    ],
)
TOO_LARGE = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="The request body is far larger than a photo may be; it was not read.",
    examples=[OpenApiExample("Too large", value={"image": ["The file is larger than 20 MB."]})],
)
THROTTLED = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="Too many searches from this client; `Retry-After` says when to try again.",
    examples=[OpenApiExample("Throttled", value={"detail": "Request was throttled. Expected available in 12 seconds."})],
)


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class ImageSearchApi(APIView):
    # Public and anonymous: no session authentication, so no CSRF check and nothing that
    # parses the body before the upload handlers are in place.
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "image_search"

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Request:
        request.upload_handlers = photo_upload_handlers(request, fields=frozenset({"image"}))
        return super().initialize_request(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # throttles first: a throttled body is never read
        if request.method == "POST" and request_too_large(request._request):
            raise RequestTooLarge({"image": [shop_images.too_large_message()]})

    @extend_schema(
        operation_id="search_by_image",
        summary="Find the garments in a photo and the products that look like each",
        description=(
            "Upload a photo. The garments in it are found (a top, a bottom, a dress, shoes, a hat ...; on a "
            "flat-lay or a single item, the item itself), each is searched on its own, and `items` lists them "
            "with their box, their likeliest categories and the `k` most similar active products, best first. "
            "The whole photo is item 0. A box `x, y, w, h` (pixels of the upright photo) searches that box "
            "only. When an item's category is predicted with confidence its search is narrowed to it "
            "(`category_applied`); send `category` to choose, or `auto_category=false` to search every "
            "category. `score` is the cosine similarity of the image embeddings (1.0 for an identical "
            "picture); results below the model's relevance floor are left out (`nothing_close`). Listings "
            "of the same photo come as one result (`also_sold_by`). The search is kept for a day at "
            "`search_url`, where a shopper can move boxes and change filters."
        ),
        request={"multipart/form-data": ImageSearchSerializer},
        responses={200: ImageSearchResponseSerializer, 400: BAD_REQUEST, 413: TOO_LARGE, 429: THROTTLED},
        tags=["search"],
    )
    def post(self, request: Request) -> Response:
        serializer = ImageSearchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        args = serializer.search_arguments()
        uploaded = args["photo"]
        search = looks.look_create(photo=uploaded.image, locate=args["detect"] and args["box"] is None)
        common = {"search": search, "k": args["k"], "filters": args["filters"], "auto_category": args["auto_category"]}
        if args["box"] is not None:
            try:
                answers = [looks.look_results(box=uploaded.scale_box(args["box"], search.width), **common)]
            except BadBox as exc:
                raise ValidationError({"box": [str(exc)]}) from exc
        else:
            order = [looks.look_default_item(search)] + [n for n in range(len(search.items)) if n != looks.look_default_item(search)]
            answers = [looks.look_results(item=n, **common) for n in order]
        scale = uploaded.original_size[0] / search.width
        return Response(image_search_data(search=search, answers=answers, scale=scale, request=request))

"""REST API for visual search. Views parse, call the selector, and serialise."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, Throttled, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config import replicas
from shop import images as shop_images
from visualsearch import looks
from visualsearch.forms import discard_body, photo_upload_handlers, request_too_large
from visualsearch.photos import BadBox
from visualsearch.serializers import (
    IMAGE_SEARCH_DEFAULT_K,
    THROTTLED,
    ImageSearchResponseSerializer,
    ImageSearchSerializer,
    error_response,
    field_errors_response,
    image_search_data,
)
from visualsearch.throttles import ScopedThrottle

BAD_REQUEST = field_errors_response(
    "Invalid input: each field in error (or `box`) maps to its messages.",
    **{
        "Not an image": {"image": ["The file is not a readable image."]},
        "Half a box": {"box": ["Give all four of x, y, w and h for the box, or none of them."]},
        "Unknown category": {"category": ["Unknown category."]},
        "k out of bounds": {"k": ["Ensure this value is less than or equal to 100."]},
    },
)
TOO_LARGE = field_errors_response(
    "The request body is far larger than a photo may be; it was not read.",
    **{"Too large": {"image": ["The file is larger than 20 MB."]}},
)
NOT_A_FORM = error_response(
    "The body is neither `multipart/form-data` nor `application/x-www-form-urlencoded` (a form without a file: "
    "parsed, then a 400 for the missing `image`); send the photo as `multipart/form-data`.",
    **{"Not a form": 'Unsupported media type "application/json" in request.'},
)


# Request examples, shown in the schema and used by schemathesis. Swagger UI's "Try it
# out" ignores examples for form bodies (swagger-api/swagger-ui#10248) and would fill each
# field with a sample of its schema (a 1x1 box at 0,0, a random slug): static/js/api_docs.js
# starts them empty instead, so a photo alone is a valid first try
# (tests/e2e/test_api_docs.py). The slugs are the demo catalogue's (import_catalog names
# categories master-sub-article).
IMAGE_SEARCH_EXAMPLES = [
    OpenApiExample(
        "Every garment in the photo",
        summary="The photo only: the garments found, each with its products",
        value={"k": IMAGE_SEARCH_DEFAULT_K},
        request_only=True,
        media_type="multipart/form-data",
    ),
    OpenApiExample(
        "A box, with filters",
        summary="One region of the photo (x, y, w, h in its pixels), women's T-shirts up to 1,500, six results",
        value={
            "x": 120, "y": 80, "w": 360, "h": 420,
            "category": "apparel-topwear-tshirts", "gender": "women", "max_price": "1500.00", "k": 6,
        },
        request_only=True,
        media_type="multipart/form-data",
    ),
    OpenApiExample(
        "Every category",
        summary="The whole photo as one item, no category narrowing",
        value={"detect": False, "auto_category": False, "k": 24},
        request_only=True,
        media_type="multipart/form-data",
    ),
]


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
        # Throttles first: a throttled body is never parsed. A refused body is read and
        # dropped (bounded) so that the client gets the answer, not a connection reset.
        try:
            super().initial(request, *args, **kwargs)
        except Throttled:
            discard_body(request._request)
            raise
        if request.method == "POST" and request_too_large(request._request):
            discard_body(request._request)
            raise RequestTooLarge({"image": [shop_images.too_large_message()]})

    @staticmethod
    def _answers(*, search, args, common) -> list:
        if args["box"] is not None:
            try:
                return [looks.look_results(box=args["photo"].scale_box(args["box"], search.width), **common)]
            except BadBox as exc:
                raise ValidationError({"box": [str(exc)]}) from exc
        default = looks.look_default_item(search)
        order = [default] + [n for n in range(len(search.items)) if n != default]
        return [looks.look_results(item=n, **common) for n in order]

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
            "of the same photo come as one result (`also_sold_by`). A photo that is a copy of a listing's own picture (a "
            "saved product photo, a screenshot, a thumbnail) puts that listing first in the whole photo's results "
            "(`same_photo`), and the whole photo is then the first item searched. The search is kept for a day at "
            "`search_url`, where a shopper can move boxes and change filters."
        ),
        request={"multipart/form-data": ImageSearchSerializer},
        examples=IMAGE_SEARCH_EXAMPLES,
        responses={200: ImageSearchResponseSerializer, 400: BAD_REQUEST, 413: TOO_LARGE, 415: NOT_A_FORM, 429: THROTTLED},
        tags=["search"],
    )
    def post(self, request: Request) -> Response:
        serializer = ImageSearchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        args = serializer.search_arguments()
        uploaded = args["photo"]
        search = looks.look_create(photo=uploaded.image, locate=args["detect"] and args["box"] is None)
        common = {"search": search, "k": args["k"], "filters": args["filters"], "auto_category": args["auto_category"]}
        # The search itself was written on the primary; what follows only reads the
        # catalogue and the index (the kept search is in memory), so a read replica may
        # answer it (config/replicas.py; the primary when none is configured or healthy).
        answers = replicas.read_with_fallback(lambda: self._answers(search=search, args=args, common=common))
        scale = uploaded.original_size[0] / search.width
        return Response(image_search_data(search=search, answers=answers, scale=scale, request=request))

"""The duplicate review queue for retailers' own tooling (staff only).

    GET  /api/duplicates/?status=open&kind=&merchant=&category=&page=
    POST /api/duplicates/{id}/confirm   {"keep": <product id>}  (optional; default: hide the newer)
    POST /api/duplicates/{id}/dismiss

Acting on a flag that is no longer open answers 409 Conflict with the flag's status, so
two reviewers (or a person and a script) never both act on one pair.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status as http
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from visualsearch.duplicates import selectors, services
from visualsearch.duplicates.models import DuplicateFlag
from visualsearch.duplicates.selectors import FlagFilters
from visualsearch.duplicates.serializers import ConfirmRequestSerializer, DuplicateFlagSerializer, FlagListQuerySerializer
from visualsearch.serializers import error_response, field_errors_response

TAG = ["duplicates"]
# Staff only: DRF answers 403 (not 401) without credentials because session authentication
# comes first and sends no WWW-Authenticate challenge.
FORBIDDEN = error_response(
    "Not signed in as staff (a staff session, or HTTP Basic with a staff account).",
    Anonymous="Authentication credentials were not provided.",
    **{"Not staff": "You do not have permission to perform this action."},
)
FLAG_NOT_FOUND = error_response("No flag with this id.", Unknown="No DuplicateFlag matches the given query.")
CONFLICT = error_response("The flag is no longer open: someone resolved it first.", Resolved="Flag 17 is confirmed, not open.")


@extend_schema(
    tags=TAG,
    summary="Flagged duplicate pairs",
    description="Pairs of products flagged as the same item listed twice, paginated. Open flags come highest score first.",
    parameters=[FlagListQuerySerializer],
    responses={
        200: DuplicateFlagSerializer(many=True),
        400: field_errors_response(
            "An unknown `status` or `kind`, or a `merchant` or `category` that is not a slug.",
            **{"Bad status": {"status": ['"closed" is not a valid choice.']}},
        ),
        403: FORBIDDEN,
        404: error_response("`page` is not a page of the list (past the last one, or below 1).", **{"Invalid page": "Invalid page."}),
    },
)
class DuplicateFlagListApi(ListAPIView):
    permission_classes = [IsAdminUser]
    serializer_class = DuplicateFlagSerializer

    def get_queryset(self):
        query = FlagListQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.duplicate_flag_list(filters=query.filters())


class _FlagActionApi(APIView):
    permission_classes = [IsAdminUser]

    def act(self, request, flag: DuplicateFlag) -> DuplicateFlag:  # pragma: no cover - overridden
        raise NotImplementedError

    def post(self, request, pk: int):
        flag = get_object_or_404(DuplicateFlag, pk=pk)
        try:
            flag = self.act(request, flag)
        except services.FlagNotOpen as exc:
            return Response({"detail": f"Flag {pk} is {exc.flag.status}, not open."}, status=http.HTTP_409_CONFLICT)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=http.HTTP_400_BAD_REQUEST)
        return Response(DuplicateFlagSerializer(selectors.duplicate_flag_list(filters=FlagFilters(status=flag.status)).get(pk=flag.pk)).data)


class DuplicateFlagConfirmApi(_FlagActionApi):
    @extend_schema(
        tags=TAG,
        summary="Confirm a duplicate",
        description=(
            "Hide one listing of the pair: the newer one, or the other one than `keep`. `keep` must be "
            "`product_a.id` or `product_b.id` of this flag (400 otherwise)."
        ),
        request=ConfirmRequestSerializer,
        examples=[
            OpenApiExample("Hide the newer listing", value={}, request_only=True),
            OpenApiExample("Keep a given listing", value={"keep": 1}, request_only=True, summary="`keep`: product_a.id or product_b.id"),
        ],
        responses={
            200: DuplicateFlagSerializer,
            400: error_response(
                "`keep` is not a product id, or not one of the pair.",
                **{"Not of the pair": "Product 42 is not one of the flagged pair.", "Not an id": "keep must be a product id."},
            ),
            403: FORBIDDEN,
            404: FLAG_NOT_FOUND,
            409: CONFLICT,
        },
    )
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, flag):
        body = ConfirmRequestSerializer(data=request.data)
        if not body.is_valid():
            raise ValueError("keep must be a product id.")
        return services.duplicate_flag_confirm(
            flag=flag, actor=request.user, keep_product_id=body.validated_data.get("keep"), via="api"
        )


class DuplicateFlagDismissApi(_FlagActionApi):
    @extend_schema(
        tags=TAG,
        summary="Dismiss a flag",
        description="Not a duplicate. The pair is never flagged again.",
        request=None,
        responses={200: DuplicateFlagSerializer, 403: FORBIDDEN, 404: FLAG_NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, flag):
        return services.duplicate_flag_dismiss(flag=flag, actor=request.user, via="api")


app_name = "duplicates_api"
urlpatterns = [
    path("duplicates/", DuplicateFlagListApi.as_view(), name="list"),
    path("duplicates/<int:pk>/confirm", DuplicateFlagConfirmApi.as_view(), name="confirm"),
    path("duplicates/<int:pk>/dismiss", DuplicateFlagDismissApi.as_view(), name="dismiss"),
]

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
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status as http
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from visualsearch.duplicates import selectors, services
from visualsearch.duplicates.models import DuplicateFlag
from visualsearch.duplicates.selectors import FlagFilters
from visualsearch.duplicates.serializers import ConfirmRequestSerializer, DuplicateFlagSerializer, ErrorSerializer

TAG = ["duplicates"]


@extend_schema(
    tags=TAG,
    summary="Flagged duplicate pairs",
    description="Pairs of products flagged as the same item listed twice, paginated. Open flags come highest score first.",
    parameters=[
        OpenApiParameter("status", OpenApiTypes.STR, enum=DuplicateFlag.Status.values, description="default: open"),
        OpenApiParameter("kind", OpenApiTypes.STR, enum=DuplicateFlag.Kind.values),
        OpenApiParameter("merchant", OpenApiTypes.STR, description="merchant slug (either listing)"),
        OpenApiParameter("category", OpenApiTypes.STR, description="category slug, descendants included (either listing)"),
    ],
)
class DuplicateFlagListApi(ListAPIView):
    permission_classes = [IsAdminUser]
    serializer_class = DuplicateFlagSerializer

    def get_queryset(self):
        params = self.request.query_params
        status = params.get("status") if params.get("status") in DuplicateFlag.Status.values else DuplicateFlag.Status.OPEN
        kind = params.get("kind") if params.get("kind") in DuplicateFlag.Kind.values else None
        filters = FlagFilters(status=status, kind=kind, merchant=params.get("merchant") or None, category=params.get("category") or None)
        return selectors.duplicate_flag_list(filters=filters)


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
        description="Hide one listing of the pair: the newer one, or the other one than `keep`.",
        request=ConfirmRequestSerializer,
        responses={200: DuplicateFlagSerializer, 400: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer},
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
        responses={200: DuplicateFlagSerializer, 404: ErrorSerializer, 409: ErrorSerializer},
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

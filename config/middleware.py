"""Project-wide request guards."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.views.defaults import bad_request

# Where the API's URLs start (config/urls.py): its answers are JSON, its refusals its own.
API_PREFIX = "/api/"


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def refuse_nul_characters(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Pages asked for with a NUL character (``%00``) in the query answer 400 (``400.html``).

    PostgreSQL refuses NUL in text parameters, so a value that reaches a query as it is makes
    the database raise (a 500): the admin's list filters do that (``/admin/shop/product/?gender=%00``,
    found by probing every page's parameters). The storefront's forms and the API's
    serializers refuse NUL field by field already (the API documents its own 400 answers per
    operation, so it is left to them).
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        if not is_api_request(request) and any(
            "\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()
        ):
            return bad_request(request, SuspiciousOperation("A NUL character in the query string."))
        return get_response(request)

    return middleware

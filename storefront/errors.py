"""The site's error answers (styled pages for people, JSON for API clients) and its favicon.

Django's own handlers render ``404.html`` / ``500.html`` for every path; under ``/api/`` a
client expects the API's ``{"detail": ...}`` instead (an HTML page in an API answer is an
undocumented content type). ``api_not_found`` is the last ``/api/`` route, so an address no
API view matches (``/api/products/abc/similar``: an id that is not a number) answers JSON
even with DEBUG on, where Django would show its technical 404 page.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.templatetags.static import static
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import page_not_found, server_error

from config.middleware import is_api_request


@csrf_exempt  # answers 404 to every method; a POST must not get the CSRF failure page instead
def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    return JsonResponse({"detail": "No API endpoint at this address (see /api/docs/)."}, status=404)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


def error(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return JsonResponse({"detail": "Server error."}, status=500)
    return server_error(request)


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """/favicon.ico, which browsers and feed readers ask for whatever the page links: the
    static file (its hashed name in production, so it is cached for good there)."""
    return HttpResponseRedirect(static("img/favicon.ico"))

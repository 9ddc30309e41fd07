"""Storefront page for visual search. Views parse the request, call selectors, and render."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from shop import images as shop_images
from visualsearch.forms import ShopTheLookForm, photo_upload_handlers, request_too_large
from visualsearch.photos import BadBox, product_search_by_photo
from visualsearch.selectors import ProductMatch
from visualsearch.throttles import shop_the_look_allowed

SHOP_THE_LOOK_K = 24


@csrf_exempt  # only so the upload handlers can be swapped first; _shop_the_look checks CSRF
@require_http_methods(["GET", "POST"])
def shop_the_look(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        # Refused before anything reads the body: too many searches, or far too big a body.
        allowed, wait = shop_the_look_allowed(request)
        if not allowed:
            return _refused(request, status=429, message=_slow_down(wait), retry_after=wait)
        if request_too_large(request):
            return _refused(request, status=413, message=shop_images.too_large_message())
    # CsrfViewMiddleware reads request.POST, which parses the upload with the default
    # handlers (photos over 2.5 MB to a temp file); the photo must stay in memory.
    request.upload_handlers = photo_upload_handlers(request, fields=ShopTheLookForm.PHOTO_FIELDS)
    return _shop_the_look(request)


def _slow_down(wait: int | None) -> str:
    when = f"in {wait} second{'s' if wait != 1 else ''}" if wait else "in a minute"
    return f"You have searched with a lot of photos in a short time. Please try again {when}."


def _refused(request: HttpRequest, *, status: int, message: str, retry_after: int | None = None) -> HttpResponse:
    """The page again, with ``message`` where upload errors go; the body is never read.

    Rendered without a CSRF check on purpose: nothing is done, and reading the token
    would mean parsing the very body being refused.
    """
    response = render(
        request,
        "visualsearch/shop_the_look.html",
        {"form": ShopTheLookForm(), "matches": None, "preview": None, "refusal": message,
         "max_upload_mb": shop_images.max_upload_bytes() // (1024 * 1024)},
        status=status,
    )
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


@csrf_protect
def _shop_the_look(request: HttpRequest) -> HttpResponse:
    form = ShopTheLookForm(data=request.POST, files=request.FILES) if request.method == "POST" else ShopTheLookForm()
    matches: list[ProductMatch] | None = None  # None: nothing searched yet
    if form.is_bound and form.is_valid():
        try:
            matches = product_search_by_photo(k=SHOP_THE_LOOK_K, **form.search_arguments())
        except BadBox as exc:
            form.add_error(None, str(exc))
    return render(
        request,
        "visualsearch/shop_the_look.html",
        {
            "form": form,
            "matches": matches,
            "preview": form.photo_preview() if form.is_bound else None,
            "max_upload_mb": shop_images.max_upload_bytes() // (1024 * 1024),
        },
    )

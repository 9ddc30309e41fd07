"""Storefront page for visual search. Views parse the request, call selectors, and render."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from visualsearch.forms import ShopTheLookForm, photo_upload_handlers
from visualsearch.selectors import BadBox, ProductMatch, product_search_by_photo

SHOP_THE_LOOK_K = 24


@csrf_exempt  # only so the upload handlers can be swapped first; _shop_the_look checks CSRF
@require_http_methods(["GET", "POST"])
def shop_the_look(request: HttpRequest) -> HttpResponse:
    # CsrfViewMiddleware reads request.POST, which parses the upload with the default
    # handlers (photos over 2.5 MB to a temp file); the photo must stay in memory.
    request.upload_handlers = photo_upload_handlers(request, fields=ShopTheLookForm.PHOTO_FIELDS)
    return _shop_the_look(request)


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
        {"form": form, "matches": matches, "preview": form.photo_preview() if form.is_bound else None},
    )

"""Shop the look: upload a photo (POST), then its search lives at a URL (GET), where the
shopper picks a garment, moves a box or changes a filter. Views parse the request, call
``visualsearch.looks``, and render; the page works without JavaScript, and with it the
results are swapped in place (``results`` answers the same query with just the results)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from shop import images as shop_images
from visualsearch import looks
from visualsearch.forms import (
    LookForm,
    ShopTheLookForm,
    discard_body,
    photo_upload_handlers,
    request_too_large,
)
from visualsearch.photos import MIN_BOX_SIDE, BadBox
from visualsearch.throttles import look_refine_allowed, shop_the_look_allowed

SHOP_THE_LOOK_K = 24
# Chips show each garment cut out of the photo at this size.
THUMB_SIDE = 160


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


def _upload_context(form: ShopTheLookForm, **extra) -> dict:
    return {"form": form, "max_upload_mb": shop_images.max_upload_bytes() // (1024 * 1024), **extra}


def _refused(request: HttpRequest, *, status: int, message: str, retry_after: int | None = None) -> HttpResponse:
    """The upload page again, with ``message`` where upload errors go; the body is never parsed.

    Rendered without a CSRF check on purpose: nothing is done, and reading the token
    would mean parsing the very body being refused. The body is read and dropped
    (bounded: ``discard_body``) so that the browser gets this page, not a reset.
    """
    discard_body(request)
    response = render(request, "visualsearch/shop_the_look.html", _upload_context(ShopTheLookForm(), refusal=message), status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


@csrf_protect
def _shop_the_look(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "visualsearch/shop_the_look.html", _upload_context(ShopTheLookForm()))
    form = ShopTheLookForm(data=request.POST, files=request.FILES)
    if not form.is_valid():
        return render(request, "visualsearch/shop_the_look.html", _upload_context(form))
    uploaded = form.cleaned_data["photo"]
    search = looks.look_create(photo=uploaded.image)
    query = {k: v for k, v in form.filter_query().items() if v not in (None, "")}
    box = uploaded.scale_box(form.cleaned_data.get("box"), search.width)
    if box is not None:
        query.update(x=box.x, y=box.y, w=box.w, h=box.h)
    url = reverse("visualsearch:look", args=[search.id])
    # 303 See Other: the browser GETs the search's own URL, so Back, reload and share never
    # re-post the photo.
    response = HttpResponse(status=303)
    response["Location"] = f"{url}?{urlencode(query)}" if query else url
    return response


def _gone(request: HttpRequest) -> HttpResponse:
    return render(request, "visualsearch/look_gone.html", status=410)


def _look_context(request: HttpRequest, search) -> tuple[dict, int]:
    items = looks.look_items(search)
    form = LookForm(data=request.GET, items=len(items))
    form.is_valid()  # an invalid field is shown beside itself; the rest still applies
    data = getattr(form, "cleaned_data", {})
    box = data.get("box")
    item = data.get("item")
    status = 200
    error = None
    try:
        results = looks.look_results(
            search=search, k=SHOP_THE_LOOK_K, item=item, box=box, filters=form.filters(), auto_category=form.auto_category(),
        )
    except BadBox as exc:
        error, status = str(exc), 400
        results = looks.look_results(search=search, k=SHOP_THE_LOOK_K, item=item, filters=form.filters(), auto_category=form.auto_category())
    selected = results.item
    drawn = selected.xywh if selected.kind == "box" else ("", "", "", "")
    box_fields = [(name, label, value, minimum) for name, label, value, minimum in zip(
        ("x", "y", "w", "h"), ("Left", "Top", "Width", "Height"), drawn, (0, 0, MIN_BOX_SIDE, MIN_BOX_SIDE), strict=True)]
    return {
        "search": search,
        "items": items,
        "selected": selected,
        "results": results,
        "outcome": results.outcome,
        "form": form,
        "box_error": error,
        "photo_url": reverse("visualsearch:look_photo", args=[search.id]),
        "box_fields": box_fields,
    }, status


@require_GET
def look(request: HttpRequest, search_id) -> HttpResponse:
    search = looks.look_get(search_id=search_id)
    if search is None:
        return _gone(request)
    if not look_refine_allowed(request) and request.GET:
        return render(request, "visualsearch/look_gone.html", {"slow_down": True}, status=429)
    context, status = _look_context(request, search)
    return render(request, "visualsearch/look.html", context, status=status)


@require_GET
def look_results(request: HttpRequest, search_id) -> HttpResponse:
    """Just the results of ``look``'s query, for shop_the_look.js to swap in place."""
    search = looks.look_get(search_id=search_id)
    if search is None:
        return _gone(request)
    allowed = look_refine_allowed(request)
    if not allowed:
        return HttpResponse("Too many searches in a short time; try again in a minute.", status=429, content_type="text/plain")
    context, status = _look_context(request, search)
    return render(request, "visualsearch/_look_results.html", context, status=status)


@require_GET
@cache_control(private=True, max_age=3600)
def look_photo(request: HttpRequest, search_id) -> HttpResponse:
    """The kept photo, only for whoever knows the search's random id."""
    search = looks.look_get(search_id=search_id)
    if search is None:
        raise Http404("This search has expired.")
    response = HttpResponse(bytes(search.photo), content_type="image/jpeg")
    response["X-Robots-Tag"] = "noindex"
    return response

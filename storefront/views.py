"""Storefront pages. Views parse the request, call selectors, and render; nothing else."""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from recommender.selectors import (
    history_viewed_ids,
    product_complete_look,
    product_similar,
    products_recently_viewed,
    products_recommended,
)
from recommender.services import product_view_record
from shop import selectors
from storefront.forms import ProductFilterForm
from visualsearch.duplicates.selectors import duplicate_kept_listing

NEWEST_ON_HOME = 12  # two full rows at 6, 4, 3 or 2 columns


def home(request: HttpRequest) -> HttpResponse:
    viewed = history_viewed_ids(user=request.user, session=request.session)
    return render(
        request,
        "storefront/home.html",
        {
            "categories": selectors.category_list_with_counts(),
            "newest": list(selectors.product_list()[:NEWEST_ON_HOME]),
            "recently_viewed": products_recently_viewed(viewed_ids=viewed),
            "recommended": products_recommended(viewed_ids=viewed),
        },
    )


def product_list(request: HttpRequest) -> HttpResponse:
    form = ProductFilterForm(data=request.GET)
    form.is_valid()  # errors are shown beside the fields; the valid ones still filter
    filters = form.filters()
    products = selectors.product_list(filters=filters, sort=form.sort_key())
    # get_page() copes with a missing, non-numeric or out-of-range ?page= by itself.
    page = Paginator(products, settings.PRODUCTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "storefront/product_list.html",
        {
            "form": form,
            "page": page,
            "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=1, on_ends=1),
            "products": page.object_list,
            "breadcrumb": selectors.category_path(slug=filters.category) if filters.category else [],
            "is_filtered": not filters.is_empty,
        },
    )


def product_detail(request: HttpRequest, slug: str) -> HttpResponse:
    product = selectors.product_get(slug=slug)
    if product is None:
        return _product_unavailable(request, slug=slug)
    images = list(product.images.all())
    # ?image=<n> picks the large image, so the thumbnails work as plain links without JS.
    try:
        selected = int(request.GET.get("image", 0))
    except ValueError:
        selected = 0
    selected = selected if 0 <= selected < len(images) else 0
    same_category = request.GET.get("same_category") == "1"
    viewed = history_viewed_ids(user=request.user, session=request.session)  # before this view
    product_view_record(user=request.user, session=request.session, product_id=product.id)
    similar = product_similar(product=product, same_category=same_category)
    return render(
        request,
        "storefront/product_detail.html",
        {
            "product": product,
            "images": images,
            "main_image": images[selected] if images else None,
            "selected_index": selected,
            "breadcrumb": selectors.category_path(slug=product.category.slug),
            "similar": similar,
            "same_category": same_category,
            # Looks are borrowed from the similar strip's products: no second search.
            "look": product_complete_look(product=product, neighbour_ids=[m.product.id for m in similar.matches]),
            "recently_viewed": products_recently_viewed(viewed_ids=viewed, exclude_product_ids={product.id}),
        },
    )


def _product_unavailable(request: HttpRequest, *, slug: str) -> HttpResponse:
    """A hidden listing: confirmed as a copy of another, the shopper goes to the listing that
    stayed (302, not 301: a reviewer can undo the decision, and browsers keep a 301 for
    good); else a "no longer available" page with the similar products (410 Gone). An
    unknown address is the site's 404."""
    hidden = selectors.product_get(slug=slug, include_hidden=True)
    if hidden is None:
        raise Http404("No such product.")
    kept = duplicate_kept_listing(product_id=hidden.id)
    if kept is not None:
        return redirect(kept.get_absolute_url())
    return render(
        request, "storefront/product_gone.html", {"product": hidden, "similar": product_similar(product=hidden)}, status=410
    )

"""``{% load looks_tags %}``: links that change one thing of a kept search's query."""

from __future__ import annotations

from django import template

register = template.Library()

BOX = ("x", "y", "w", "h")


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with ``changes`` applied ("" or None removes a key).

    Choosing a garment (``item``) forgets a drawn box; choosing a category (or "any") does
    not touch the box, so the shopper keeps their crop while changing the shelf.
    """
    query = context["request"].GET.copy()
    if "item" in changes:
        for key in BOX:
            query.pop(key, None)
    for key, value in changes.items():
        if value is None or value == "":
            query.pop(key, None)
        else:
            query[key] = str(value)
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def percent_of(item, search) -> dict:
    """``item|percent_of:search``: the item's box as percentages of the kept photo."""
    return item.percent(search.width, search.height)


@register.filter
def thumb_of(item, search) -> str:
    """``item|thumb_of:search``: CSS that shows the item's box of the photo as a background."""
    return item.thumb_style(search.width, search.height)

"""The listing's query string: the catalogue filters plus search words, colour and sort."""

from __future__ import annotations

from django import forms

from shop import selectors
from shop.forms import ProductFilterFields

SORT_LABELS = {
    "newest": "Newest",
    "price_asc": "Price: low to high",
    "price_desc": "Price: high to low",
    "title": "Name",
}


class ProductFilterForm(ProductFilterFields):
    """Always bound to ``request.GET``; every field is optional, so an empty query is valid.

    Colours are those present among active products, so a stale value is a form error.
    """

    q = forms.CharField(label="Search", max_length=100, required=False)
    colour = forms.ChoiceField(label="Colour", required=False)
    sort = forms.ChoiceField(
        label="Sort by",
        required=False,
        choices=[(key, SORT_LABELS.get(key, key.replace("_", " ").title())) for key in selectors.SORTS],
    )

    price_placeholder = "₹"
    field_order = ["q", "category", "gender", "colour", "min_price", "max_price", "sort"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        colours = selectors.product_facets()["colours"]
        self.fields["colour"].choices = [("", "Any")] + [(c, c) for c in colours]
        self.fields["q"].widget.attrs.update({"type": "search", "placeholder": "Search products"})

    def sort_key(self) -> str:
        return getattr(self, "cleaned_data", {}).get("sort") or "newest"

"""The storefront's product filter: query-string input in, ``selectors.ProductFilters`` out."""

from __future__ import annotations

from django import forms

from shop import selectors
from shop.models import Product

SORT_LABELS = {
    "newest": "Newest",
    "price_asc": "Price: low to high",
    "price_desc": "Price: high to low",
    "title": "Name",
}


class ProductFilterForm(forms.Form):
    """Always bound to ``request.GET``; every field is optional, so an empty query is valid.

    Choices are read from the catalogue on construction (categories with their path,
    colours present among active products), so a stale or hand-typed value is a form
    error rather than an empty result or a crash.
    """

    q = forms.CharField(label="Search", max_length=100, required=False)
    category = forms.ChoiceField(label="Category", required=False)
    gender = forms.ChoiceField(label="Gender", required=False, choices=[("", "Any")] + Product.Gender.choices)
    colour = forms.ChoiceField(label="Colour", required=False)
    min_price = forms.DecimalField(label="Min price", required=False, min_value=0, max_digits=10, decimal_places=2)
    max_price = forms.DecimalField(label="Max price", required=False, min_value=0, max_digits=10, decimal_places=2)
    sort = forms.ChoiceField(
        label="Sort by",
        required=False,
        choices=[(key, SORT_LABELS.get(key, key.replace("_", " ").title())) for key in selectors.SORTS],
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", "All categories")] + selectors.category_choices()
        colours = selectors.product_facets()["colours"]
        self.fields["colour"].choices = [("", "Any")] + [(c, c) for c in colours]
        for name in ("min_price", "max_price"):
            self.fields[name].widget.attrs.update({"inputmode": "decimal", "placeholder": "₹", "step": "any"})
        self.fields["q"].widget.attrs.update({"type": "search", "placeholder": "Search products"})

    def clean(self) -> dict:
        cleaned = super().clean()
        low, high = cleaned.get("min_price"), cleaned.get("max_price")
        if low is not None and high is not None and low > high:
            self.add_error("max_price", "Max price must not be below min price.")
        return cleaned

    def filters(self) -> selectors.ProductFilters:
        """The filters from the fields that validated; an invalid field is left out, not fatal."""
        data = getattr(self, "cleaned_data", {})
        return selectors.ProductFilters(
            category=data.get("category") or None,
            gender=data.get("gender") or None,
            colour=data.get("colour") or None,
            min_price=data.get("min_price"),
            max_price=data.get("max_price"),
            q=data.get("q") or None,
        )

    def sort_key(self) -> str:
        return getattr(self, "cleaned_data", {}).get("sort") or "newest"

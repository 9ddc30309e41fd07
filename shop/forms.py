"""Parsing catalogue filters from a form: the fields every storefront form with filters
shares (the listing, Shop the look), ending in ``shop.filters.ProductFilters``."""

from __future__ import annotations

from typing import Any

from django import forms

from shop import selectors
from shop.filters import ProductFilters
from shop.models import Product


class ProductFilterFields(forms.Form):
    """Category, gender and price range; subclasses add their own fields (any field named
    like a ``ProductFilters`` attribute is picked up by :meth:`filters`).

    Category choices are read from the catalogue on construction, so a stale or hand-typed
    slug is a form error rather than an empty result or a crash.
    """

    category = forms.ChoiceField(label="Category", required=False)
    gender = forms.ChoiceField(label="Gender", required=False, choices=[("", "Any")] + Product.Gender.choices)
    min_price = forms.DecimalField(label="Min price", required=False, min_value=0, max_digits=10, decimal_places=2)
    max_price = forms.DecimalField(label="Max price", required=False, min_value=0, max_digits=10, decimal_places=2)

    price_placeholder = "Any"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", "All categories")] + selectors.category_choices()
        for name in ("min_price", "max_price"):
            self.fields[name].widget.attrs.update(
                {"inputmode": "decimal", "placeholder": self.price_placeholder, "step": "any"}
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if error := ProductFilters.from_values(cleaned).price_range_error():
            self.add_error("max_price", error)
        return cleaned

    def filters(self) -> ProductFilters:
        """The filters from the fields that validated; an invalid field is left out, not fatal."""
        return ProductFilters.from_values(getattr(self, "cleaned_data", {}))

"""Parsing the review queue's query string and action posts."""

from __future__ import annotations

from django import forms

from visualsearch.duplicates.models import DuplicateFlag
from visualsearch.duplicates.selectors import FlagFilters


class QueueFilterForm(forms.Form):
    status = forms.ChoiceField(choices=DuplicateFlag.Status.choices, required=False)
    kind = forms.ChoiceField(choices=[("", "Any kind"), *DuplicateFlag.Kind.choices], required=False)
    merchant = forms.ChoiceField(required=False)
    category = forms.ChoiceField(required=False)

    def __init__(self, *args, merchants=(), categories=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["merchant"].choices = [("", "Any merchant")] + [(m.slug, m.name) for m in merchants]
        self.fields["category"].choices = [("", "Any category")] + [(c.slug, str(c)) for c in categories]

    def filters(self) -> FlagFilters:
        data = self.cleaned_data if self.is_valid() else {}
        return FlagFilters(
            status=data.get("status") or DuplicateFlag.Status.OPEN,
            kind=data.get("kind") or None,
            merchant=data.get("merchant") or None,
            category=data.get("category") or None,
        )


class ConfirmForm(forms.Form):
    # Empty: hide the newer listing. Otherwise the product that stays.
    keep = forms.IntegerField(required=False, min_value=1)


class BulkForm(forms.Form):
    action = forms.ChoiceField(choices=[("confirm", "Confirm"), ("dismiss", "Dismiss")])
    flags = forms.TypedMultipleChoiceField(coerce=int, choices=[])

    def clean_flags(self):
        return self.cleaned_data["flags"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any integer id; unknown or non-open ones are reported back, not an error.
        raw = self.data.getlist("flags") if hasattr(self.data, "getlist") else self.data.get("flags", [])
        self.fields["flags"].choices = [(value, value) for value in raw]

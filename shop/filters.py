"""Product filters, declared once: the listing, the photo search, the similar strip and the
API all describe "which products" with :class:`ProductFilters` and turn it into SQL the same
way, through :func:`products_matching` (the ORM; visual search puts that queryset in an
``EXISTS`` beside its vector ordering).

Input is parsed by :class:`shop.forms.ProductFilterFields` (the storefront's forms) and by the
API serializers, which both end in :meth:`ProductFilters.from_values`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet

from shop.models import Category, Product

PRICE_RANGE_ERROR = "Max price must not be below min price."


@dataclass(frozen=True)
class ProductFilters:
    category: str | None = None  # a category slug; its descendants match too
    gender: str | None = None
    colour: str | None = None  # case-insensitive
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    merchant: str | None = None  # a merchant slug
    q: str | None = None  # words in the title or description
    # Category slugs, any of them (and their descendants): the scope of a photo search narrowed
    # to a guess and its next likely guesses (visualsearch.categories.narrowing_scope).
    categories: tuple[str, ...] = ()

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ProductFilters:
        """From cleaned form or serializer data: blanks mean "any", unknown keys are ignored."""
        out: dict[str, Any] = {}
        for field in fields(cls):
            value = values.get(field.name)
            out[field.name] = field.default if value in ("", None) else value
        return cls(**out)

    @property
    def is_empty(self) -> bool:
        return self == ProductFilters()

    def price_range_error(self) -> str | None:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            return PRICE_RANGE_ERROR
        return None


def category_descendant_ids(*, category: Category) -> list[int]:
    """Ids of ``category`` and everything below it. The tree is small (a few hundred nodes)."""
    return categories_descendant_ids(category_ids=[category.id])


def categories_descendant_ids(*, category_ids: list[int]) -> list[int]:
    """Ids of the categories ``category_ids`` and everything below them (one read of the tree)."""
    children: dict[int | None, list[int]] = {}
    for node_id, parent_id in Category.objects.values_list("id", "parent_id"):
        children.setdefault(parent_id, []).append(node_id)
    result, seen, stack = [], set(), list(category_ids)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        result.append(node)
        stack.extend(children.get(node, []))
    return result


def _under_categories(slugs: tuple[str, ...]) -> Q:
    """Products filed under any of the categories ``slugs`` or their descendants (two reads: the
    slugs' ids, the tree); unknown slugs match nothing."""
    found = list(Category.objects.filter(slug__in=slugs).values_list("id", flat=True))
    return Q(category_id__in=categories_descendant_ids(category_ids=found) if found else [])


def product_filter_q(filters: ProductFilters) -> Q:
    """The filters as one ``Q`` over ``Product``. An unknown category matches nothing."""
    q = Q(status=Product.Status.ACTIVE)
    # A shopper's category and a photo search's scope both hold when both are given.
    if filters.category:
        q &= _under_categories((filters.category,))
    if filters.categories:
        q &= _under_categories(filters.categories)
    if filters.gender:
        q &= Q(gender=filters.gender)
    if filters.colour:
        q &= Q(colour__iexact=filters.colour)
    if filters.min_price is not None:
        q &= Q(price__gte=filters.min_price)
    if filters.max_price is not None:
        q &= Q(price__lte=filters.max_price)
    if filters.merchant:
        q &= Q(merchant__slug=filters.merchant)
    if filters.q:
        q &= Q(title__icontains=filters.q) | Q(description__icontains=filters.q)
    return q


def products_matching(filters: ProductFilters | None = None) -> QuerySet[Product]:
    """Active products passing ``filters`` (no ordering, nothing loaded)."""
    return Product.objects.filter(product_filter_q(filters or ProductFilters()))

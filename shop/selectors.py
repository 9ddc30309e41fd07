"""Reads from the catalogue, shaped for the storefront and the API."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from shop.filters import ProductFilters, products_matching
from shop.models import Category, Product, ProductImage


SORTS = {
    "newest": ("-created_at", "-id"),
    "price_asc": ("price", "id"),
    "price_desc": ("-price", "-id"),
    "title": ("title", "id"),
}


def _with_images(queryset: QuerySet[Product]) -> QuerySet[Product]:
    return queryset.select_related("category", "merchant").prefetch_related(
        Prefetch("images", queryset=ProductImage.objects.order_by("position", "id"))
    )


def product_list(*, filters: ProductFilters | None = None, sort: str = "newest") -> QuerySet[Product]:
    """Active products matching ``filters``, with category, merchant and images loaded."""
    return _with_images(products_matching(filters)).order_by(*SORTS.get(sort, SORTS["newest"]))


def product_get(*, slug: str, include_hidden: bool = False) -> Product | None:
    queryset = Product.objects.all() if include_hidden else Product.objects.filter(status=Product.Status.ACTIVE)
    return _with_images(queryset).filter(slug=slug).first()


def product_get_active(*, product_id: int) -> Product | None:
    """The active product ``product_id`` with its category, without images: for a hot path
    (the similar-items API) that only needs its id and category (one query, not two)."""
    return Product.objects.select_related("category").filter(id=product_id, status=Product.Status.ACTIVE).first()


def product_get_by_ids(*, ids: list[int]) -> list[Product]:
    """Active products in the order of ``ids`` (missing or hidden ones are left out)."""
    return _in_order_of(ids, _with_images(Product.objects.filter(id__in=ids, status=Product.Status.ACTIVE)))


# What a product card shows (storefront/_product_card.html, the APIs' result rows, "also
# sold by" lines): strips of cards load only these fields. Whole rows (timestamps,
# description, attributes, all parsed into Python) cost 1.0 ms of an 8.8 ms similar-items
# request in process (16 cards, 300 products, three alternating rounds, 2026-12-06).
CARD_PRODUCT_FIELDS = (
    "id", "slug", "title", "price", "currency", "status", "gender", "category_id", "merchant_id",
    "merchant__name", "merchant__slug",
)
CARD_IMAGE_FIELDS = ("id", "product_id", "image", "alt_text", "width", "height", "position")


def product_cards_by_ids(*, ids: list[int]) -> list[Product]:
    """Active products in the order of ``ids``, loaded for cards: CARD_PRODUCT_FIELDS, the
    merchant, and the images' CARD_IMAGE_FIELDS (two queries). Reading another field costs
    a query per product: pages that need more use ``product_get_by_ids``."""
    images = ProductImage.objects.order_by("position", "id").only(*CARD_IMAGE_FIELDS)
    queryset = (
        Product.objects.filter(id__in=ids, status=Product.Status.ACTIVE)
        .select_related("merchant")
        .only(*CARD_PRODUCT_FIELDS)
        .prefetch_related(Prefetch("images", queryset=images))
    )
    return _in_order_of(ids, queryset)


def _in_order_of(ids: list[int], products) -> list[Product]:
    """``products`` in the order of ``ids``; ids without a product are left out."""
    by_id = {p.id: p for p in products}
    return [by_id[i] for i in ids if i in by_id]


def category_list_with_counts(*, max_depth: int = 2) -> list[dict]:
    """Categories down to ``max_depth`` with the number of active products beneath each."""
    direct = dict(
        Product.objects.filter(status=Product.Status.ACTIVE)
        .values_list("category_id")
        .annotate(n=Count("id"))
        .values_list("category_id", "n")
    )
    nodes = list(Category.objects.all())
    by_parent: dict[int | None, list[Category]] = {}
    for node in nodes:
        by_parent.setdefault(node.parent_id, []).append(node)

    def total(node: Category) -> int:
        return direct.get(node.id, 0) + sum(total(child) for child in by_parent.get(node.id, []))

    def build(node: Category) -> dict:
        children = [build(c) for c in sorted(by_parent.get(node.id, []), key=lambda c: c.name)]
        return {
            "category": node,
            "count": total(node),
            "children": [c for c in children if c["count"]] if node.depth < max_depth else [],
        }

    roots = [build(node) for node in sorted(by_parent.get(None, []), key=lambda c: c.name)]
    return sorted((r for r in roots if r["count"]), key=lambda r: -r["count"])


def product_facets() -> dict[str, list]:
    """Values present among active products, for the listing's filter controls."""
    active = Product.objects.filter(status=Product.Status.ACTIVE)
    return {
        "genders": [
            (value, Product.Gender(value).label)
            for value in active.exclude(gender="").values_list("gender", flat=True).distinct().order_by("gender")
        ],
        "colours": list(active.exclude(colour="").values_list("colour", flat=True).distinct().order_by("colour")),
    }


def _category_index() -> dict[int, Category]:
    """Every category, by id, in one query: walking ``parent`` node by node costs a query a level."""
    return {node.id: node for node in Category.objects.only("id", "name", "slug", "parent_id", "depth")}


def category_nodes() -> dict[int, Category]:
    """The category tree, every node by id (one query; the tree holds a few hundred nodes)."""
    return _category_index()


def _path_to(node_id: int, index: dict[int, Category]) -> list[Category]:
    chain: list[Category] = []
    current = index.get(node_id)
    while current is not None:
        chain.append(current)
        current = index.get(current.parent_id) if current.parent_id else None
    return list(reversed(chain))


def category_path(*, slug: str) -> list[Category]:
    """The category ``slug`` and its ancestors, root first (a breadcrumb); [] when unknown."""
    index = _category_index()
    node = next((c for c in index.values() if c.slug == slug), None)
    return _path_to(node.id, index) if node else []


def category_choices() -> list[tuple[str, str]]:
    """(slug, "Apparel › Topwear › Tshirts") for every category, sorted by that path."""
    index = _category_index()
    paths = [(node.slug, " › ".join(c.name for c in _path_to(node.id, index))) for node in index.values()]
    return sorted(paths, key=lambda item: item[1].lower())

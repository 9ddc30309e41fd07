from decimal import Decimal

import pytest

from shop import selectors
from shop.models import Product
from shop.selectors import ProductFilters
from tests.factories import CategoryFactory, MerchantFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tree():
    apparel = CategoryFactory(name="Apparel", slug="apparel")
    topwear = CategoryFactory(name="Topwear", slug="apparel-topwear", parent=apparel)
    tshirts = CategoryFactory(name="Tshirts", slug="apparel-topwear-tshirts", parent=topwear)
    footwear = CategoryFactory(name="Footwear", slug="footwear")
    return {"apparel": apparel, "topwear": topwear, "tshirts": tshirts, "footwear": footwear}


def slugs(queryset) -> set[str]:
    return {p.slug for p in queryset}


def test_category_filter_includes_descendants(tree):
    tee = ProductFactory(slug="tee", category=tree["tshirts"])
    top = ProductFactory(slug="top", category=tree["topwear"])
    ProductFactory(slug="shoe", category=tree["footwear"])
    assert slugs(selectors.product_list(filters=ProductFilters(category="apparel"))) == {"tee", "top"}
    assert slugs(selectors.product_list(filters=ProductFilters(category="apparel-topwear-tshirts"))) == {tee.slug}
    assert slugs(selectors.product_list(filters=ProductFilters(category="apparel-topwear"))) == {tee.slug, top.slug}
    assert not selectors.product_list(filters=ProductFilters(category="no-such-category")).exists()


def test_gender_colour_and_price_filters():
    ProductFactory(slug="men-red-500", gender=Product.Gender.MEN, colour="Red", price=Decimal("500"))
    ProductFactory(slug="women-blue-1500", gender=Product.Gender.WOMEN, colour="Blue", price=Decimal("1500"))
    ProductFactory(slug="women-red-2500", gender=Product.Gender.WOMEN, colour="Red", price=Decimal("2500"))
    assert slugs(selectors.product_list(filters=ProductFilters(gender="women"))) == {"women-blue-1500", "women-red-2500"}
    assert slugs(selectors.product_list(filters=ProductFilters(colour="red"))) == {"men-red-500", "women-red-2500"}
    price_range = ProductFilters(min_price=Decimal("1000"), max_price=Decimal("2500"))
    assert slugs(selectors.product_list(filters=price_range)) == {"women-blue-1500", "women-red-2500"}
    both = ProductFilters(gender="women", colour="Red", max_price=Decimal("3000"))
    assert slugs(selectors.product_list(filters=both)) == {"women-red-2500"}


def test_hidden_products_are_left_out_of_lists_and_lookups():
    ProductFactory(slug="visible")
    ProductFactory(slug="hidden", status=Product.Status.HIDDEN)
    assert slugs(selectors.product_list()) == {"visible"}
    assert selectors.product_get(slug="hidden") is None
    assert selectors.product_get(slug="hidden", include_hidden=True).slug == "hidden"


def test_sorts():
    ProductFactory(slug="b", title="B", price=Decimal("300"))
    ProductFactory(slug="a", title="A", price=Decimal("100"))
    ProductFactory(slug="c", title="C", price=Decimal("200"))
    assert [p.slug for p in selectors.product_list(sort="price_asc")] == ["a", "c", "b"]
    assert [p.slug for p in selectors.product_list(sort="price_desc")] == ["b", "c", "a"]
    assert [p.slug for p in selectors.product_list(sort="title")] == ["a", "b", "c"]
    assert [p.slug for p in selectors.product_list(sort="newest")] == ["c", "a", "b"]


def test_merchant_and_text_filters():
    acme = MerchantFactory(name="Acme")
    ProductFactory(slug="linen-shirt", title="Linen Shirt", merchant=acme)
    ProductFactory(slug="denim", title="Denim jacket", description="Washed linen lining")
    ProductFactory(slug="other", title="Wool scarf")
    assert slugs(selectors.product_list(filters=ProductFilters(q="linen"))) == {"linen-shirt", "denim"}
    assert slugs(selectors.product_list(filters=ProductFilters(merchant="acme"))) == {"linen-shirt"}


def test_category_path_is_root_first_in_one_query(tree, django_assert_num_queries):
    with django_assert_num_queries(1):
        path = selectors.category_path(slug="apparel-topwear-tshirts")
    assert [c.name for c in path] == ["Apparel", "Topwear", "Tshirts"]
    assert selectors.category_path(slug="nope") == []


def test_category_choices_show_the_path_sorted(tree):
    assert selectors.category_choices() == [
        ("apparel", "Apparel"),
        ("apparel-topwear", "Apparel › Topwear"),
        ("apparel-topwear-tshirts", "Apparel › Topwear › Tshirts"),
        ("footwear", "Footwear"),
    ]


def test_category_list_with_counts_counts_descendants_and_drops_empty_roots(tree):
    ProductFactory(category=tree["tshirts"])
    ProductFactory(category=tree["topwear"])
    ProductFactory(category=tree["topwear"], status=Product.Status.HIDDEN)
    CategoryFactory(name="Empty", slug="empty")
    roots = selectors.category_list_with_counts()
    assert [(r["category"].slug, r["count"]) for r in roots] == [("apparel", 2)]
    (topwear,) = roots[0]["children"]
    assert (topwear["category"].slug, topwear["count"]) == ("apparel-topwear", 2)


def test_product_facets_list_values_of_active_products():
    ProductFactory(gender=Product.Gender.WOMEN, colour="Blue")
    ProductFactory(gender=Product.Gender.MEN, colour="Red")
    ProductFactory(gender=Product.Gender.GIRLS, colour="Pink", status=Product.Status.HIDDEN)
    facets = selectors.product_facets()
    assert facets["colours"] == ["Blue", "Red"]
    assert facets["genders"] == [("men", "Men"), ("women", "Women")]

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.urls import reverse

from shop.models import Product
from shop.templatetags.shop_tags import attribute_items, money
from tests.factories import CategoryFactory, ProductFactory, ProductImageFactory

LIST_URL = reverse("storefront:product_list")


def listed(response) -> set[str]:
    return {p.slug for p in response.context["products"]}


@pytest.fixture
def tree():
    apparel = CategoryFactory(name="Apparel", slug="apparel")
    topwear = CategoryFactory(name="Topwear", slug="apparel-topwear", parent=apparel)
    tshirts = CategoryFactory(name="Tshirts", slug="apparel-topwear-tshirts", parent=topwear)
    footwear = CategoryFactory(name="Footwear", slug="footwear")
    return {"apparel": apparel, "topwear": topwear, "tshirts": tshirts, "footwear": footwear}


# money filter ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (Decimal("1299"), "INR", "₹1,299"),
        (Decimal("1299.00"), None, "₹1,299"),  # settings.DEFAULT_CURRENCY
        (Decimal("799.5"), "INR", "₹799.50"),
        (Decimal("129900"), "INR", "₹1,29,900"),  # Indian grouping: lakh
        (Decimal("12345678.9"), "inr", "₹1,23,45,678.90"),
        (Decimal("0"), "INR", "₹0"),
        (Decimal("1234567"), "USD", "$1,234,567"),
        (Decimal("1500"), "CHF", "CHF 1,500"),
        ("abc", "INR", ""),
        (None, "INR", ""),
    ],
)
def test_money(value, currency, expected):
    assert money(value, currency) == expected


def test_money_in_a_template():
    html = Template("{% load shop_tags %}{{ price|money:'INR' }}").render(Context({"price": Decimal("2499.00")}))
    assert html == "₹2,499"


def test_attribute_items_orders_known_keys_first_and_skips_empties():
    items = attribute_items({"year": 2012, "usage": "Casual", "season": "Summer", "fit": "", "base_colour": "Navy", "x": [1]})
    assert items == [("Season", "Summer"), ("Usage", "Casual"), ("Year", "2012"), ("Base colour", "Navy")]
    assert attribute_items(None) == []


# home -----------------------------------------------------------------------


@pytest.mark.django_db
def test_home_shows_categories_with_counts_and_newest_products(client, tree, django_assert_max_num_queries):
    ProductImageFactory(product=ProductFactory(title="Striped Tee", category=tree["tshirts"]))
    ProductFactory(title="Runner", category=tree["footwear"])
    with django_assert_max_num_queries(6):
        response = client.get(reverse("storefront:home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Shop by category" in html
    assert 'href="/products/?category=apparel"' in html
    assert 'href="/products/?category=apparel-topwear"' in html
    assert "Striped Tee" in html and "Runner" in html
    assert 'loading="lazy"' in html
    assert "/static/css/site.css" in html


@pytest.mark.django_db
def test_home_with_an_empty_catalogue(client):
    response = client.get(reverse("storefront:home"))
    assert response.status_code == 200
    assert "catalogue is empty" in response.content.decode()


# product list ---------------------------------------------------------------


@pytest.mark.django_db
def test_list_filters_by_category_including_descendants(client, tree):
    ProductFactory(slug="tee", category=tree["tshirts"])
    ProductFactory(slug="top", category=tree["topwear"])
    ProductFactory(slug="shoe", category=tree["footwear"])
    response = client.get(LIST_URL, {"category": "apparel"})
    assert response.status_code == 200
    assert listed(response) == {"tee", "top"}
    assert [c.slug for c in response.context["breadcrumb"]] == ["apparel"]
    response = client.get(LIST_URL, {"category": "apparel-topwear-tshirts"})
    assert listed(response) == {"tee"}
    html = response.content.decode()
    # Breadcrumb links each level to its filtered listing; the select shows the path.
    assert 'href="/products/?category=apparel-topwear"' in html
    assert "Apparel › Topwear › Tshirts" in html


@pytest.mark.django_db
def test_list_filters_by_gender_and_colour(client):
    ProductFactory(slug="men-red", gender=Product.Gender.MEN, colour="Red")
    ProductFactory(slug="women-red", gender=Product.Gender.WOMEN, colour="Red")
    ProductFactory(slug="women-blue", gender=Product.Gender.WOMEN, colour="Blue")
    assert listed(client.get(LIST_URL, {"gender": "women"})) == {"women-red", "women-blue"}
    assert listed(client.get(LIST_URL, {"colour": "Red"})) == {"men-red", "women-red"}
    assert listed(client.get(LIST_URL, {"gender": "women", "colour": "Red"})) == {"women-red"}


@pytest.mark.django_db
def test_list_filters_by_price_range(client):
    for price in ("499", "999", "1499", "2999"):
        ProductFactory(slug=f"p{price}", price=Decimal(price))
    assert listed(client.get(LIST_URL, {"min_price": "900", "max_price": "1500"})) == {"p999", "p1499"}
    assert listed(client.get(LIST_URL, {"min_price": "1000"})) == {"p1499", "p2999"}
    assert listed(client.get(LIST_URL, {"max_price": "499"})) == {"p499"}


@pytest.mark.django_db
def test_list_search_and_sort(client):
    ProductFactory(slug="cheap", title="Linen shirt", price=Decimal("300"))
    ProductFactory(slug="dear", title="Linen trousers", price=Decimal("900"))
    ProductFactory(slug="other", title="Wool scarf")
    response = client.get(LIST_URL, {"q": "linen", "sort": "price_desc"})
    assert [p.slug for p in response.context["products"]] == ["dear", "cheap"]
    assert "Results for “linen”" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_price": "abc"}, "min_price"),
        ({"max_price": "-5"}, "max_price"),
        ({"min_price": "500", "max_price": "100"}, "max_price"),
        ({"category": "no-such-category"}, "category"),
        ({"gender": "robots"}, "gender"),
        ({"colour": "Octarine"}, "colour"),
        ({"sort": "random"}, "sort"),
    ],
)
def test_invalid_filter_input_shows_errors_not_a_500(client, params, field):
    ProductFactory(slug="shirt", colour="Red")
    response = client.get(LIST_URL, params)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    html = response.content.decode()
    assert 'aria-invalid="true"' in html and "field__errors" in html
    # The invalid field is ignored; the listing still shows what the valid ones select.
    assert listed(response) == {"shirt"}


@pytest.mark.django_db
def test_invalid_field_does_not_drop_valid_ones(client):
    ProductFactory(slug="men", gender=Product.Gender.MEN)
    ProductFactory(slug="women", gender=Product.Gender.WOMEN)
    response = client.get(LIST_URL, {"gender": "women", "min_price": "abc"})
    assert listed(response) == {"women"}


@pytest.mark.django_db
def test_no_products_match(client):
    ProductFactory(colour="Red", price=Decimal("500"))
    response = client.get(LIST_URL, {"min_price": "10000"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "No products match" in html and "0 products" in html


@pytest.mark.django_db
def test_hidden_products_are_not_listed(client):
    ProductFactory(slug="visible")
    ProductFactory(slug="hidden", status=Product.Status.HIDDEN)
    assert listed(client.get(LIST_URL)) == {"visible"}


@pytest.mark.django_db
def test_pagination_keeps_filters_and_bounds_queries(client, settings, tree, django_assert_max_num_queries):
    settings.PRODUCTS_PER_PAGE = 24
    products = [ProductFactory(category=tree["tshirts"], colour="Red") for _ in range(30)]
    for product in products:
        ProductImageFactory(product=product)
    ProductFactory(category=tree["footwear"], colour="Red")  # filtered out by category
    params = {"category": "apparel", "colour": "Red"}

    with django_assert_max_num_queries(10):
        first = client.get(LIST_URL, params)
    assert first.status_code == 200
    assert len(first.context["products"]) == 24
    assert first.context["page"].paginator.count == 30
    html = first.content.decode()
    assert "30 products" in html
    assert '?category=apparel&amp;colour=Red&amp;page=2"' in html  # next-page link keeps the filters
    assert html.count('loading="lazy"') == 24

    with django_assert_max_num_queries(10):
        second = client.get(LIST_URL, {**params, "page": 2})
    assert len(second.context["products"]) == 6
    assert not set(p.id for p in first.context["products"]) & set(p.id for p in second.context["products"])
    assert 'page=1"' in second.content.decode()

    # Out-of-range and junk page numbers fall back instead of failing.
    assert client.get(LIST_URL, {**params, "page": 99}).context["page"].number == 2
    assert client.get(LIST_URL, {**params, "page": "x"}).context["page"].number == 1


# product detail -------------------------------------------------------------


@pytest.mark.django_db
def test_detail_shows_product_images_and_facts(client, tree, django_assert_max_num_queries):
    product = ProductFactory(
        title="Navy Polo",
        category=tree["tshirts"],
        price=Decimal("1299"),
        gender=Product.Gender.MEN,
        colour="Navy Blue",
        description="Pique cotton polo.",
        attributes={"season": "Summer", "usage": "Casual", "year": 2012},
    )
    images = [ProductImageFactory(product=product, colour=c) for c in [(10, 20, 90), (200, 200, 200), (0, 0, 0)]]
    # product, images, category path, the active model, the precomputed strip and the vector
    # lookup for the similar strip, the active model and the product's look for "complete the
    # look", and the session (recently viewed) read and write with their savepoints.
    with django_assert_max_num_queries(12):
        response = client.get(product.get_absolute_url())
    assert response.status_code == 200
    html = response.content.decode()
    for image in images:
        assert image.image.url in html
    assert response.context["main_image"] == images[0]
    for text in ("Navy Polo", "₹1,299", product.merchant.name, "Men", "Navy Blue", "Pique cotton polo.", "Summer", "Casual", "2012"):
        assert text in html
    # Breadcrumb: every level links to its filtered list.
    for slug in ("apparel", "apparel-topwear", "apparel-topwear-tshirts"):
        assert f'href="/products/?category={slug}"' in html
    assert 'href="/products/?colour=Navy%20Blue"' in html


@pytest.mark.django_db
def test_detail_thumbnail_links_select_the_main_image_without_js(client):
    product = ProductFactory()
    images = [ProductImageFactory(product=product, colour=(i * 60, 10, 10)) for i in range(3)]
    response = client.get(product.get_absolute_url(), {"image": 2})
    assert response.context["main_image"] == images[2]
    assert 'href="?image=1"' in response.content.decode()
    for junk in ("7", "-1", "x"):
        assert client.get(product.get_absolute_url(), {"image": junk}).context["main_image"] == images[0]


@pytest.mark.django_db
def test_detail_without_images(client):
    product = ProductFactory()
    response = client.get(product.get_absolute_url())
    assert response.status_code == 200
    assert "No image" in response.content.decode()


@pytest.mark.django_db
def test_detail_410_for_hidden_and_404_for_unknown_products(client):
    hidden = ProductFactory(status=Product.Status.HIDDEN)
    assert client.get(hidden.get_absolute_url()).status_code == 410  # tests/storefront/test_errors.py
    response = client.get(reverse("storefront:product_detail", kwargs={"slug": "no-such-product"}))
    assert response.status_code == 404
    assert "couldn’t find that page" in response.content.decode()


@pytest.mark.django_db
def test_header_search_box_keeps_the_query(client):
    html = client.get(LIST_URL, {"q": "kurta"}).content.decode()
    assert 'name="q" value="kurta"' in html

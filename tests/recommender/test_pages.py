"""The recommender on the storefront: the similar strip, "Recently viewed" and "Recommended for you"."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from recommender.models import ProductView
from recommender.services import similar_strips_refresh
from shop.models import Product
from tests.factories import CategoryFactory, MerchantFactory, ProductFactory, ProductImageFactory, make_image_bytes
from visualsearch.indexing import images_embed

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    tops, shoes = CategoryFactory(name="Tops", slug="tops"), CategoryFactory(name="Shoes", slug="shoes")
    products = []
    for i in range(8):
        category = tops if i < 5 else shoes
        product = ProductFactory(category=category, title=f"Item {i}", slug=f"item-{i}")
        ProductImageFactory(product=product, colour=(30 * i, 120, 200 - 20 * i), pattern=i % 4 + 1)
        products.append(product)
    images_embed(image_ids=[p.images.get().id for p in products])
    return products


def _titles(matches):
    return [m.product.title for m in matches]


def test_product_page_shows_similar_items_without_itself_or_hidden_ones(client, catalogue):
    hidden = catalogue[1]
    hidden.status = Product.Status.HIDDEN
    hidden.save()
    response = client.get(catalogue[0].get_absolute_url())
    titles = _titles(response.context["similar"].matches)
    assert response.status_code == 200
    assert titles and "Item 0" not in titles and "Item 1" not in titles
    assert len(titles) == 6  # every other active product, since k=12 > 6
    assert b"Visually similar" in response.content and b"% match" in response.content
    assert b'class="product-strip"' in response.content
    assert b"{%" not in response.content and b"#}" not in response.content  # no template comment leaks


def test_same_category_option_keeps_the_strip_in_the_category(client, catalogue):
    response = client.get(catalogue[0].get_absolute_url() + "?same_category=1")
    assert sorted(_titles(response.context["similar"].matches)) == ["Item 1", "Item 2", "Item 3", "Item 4"]
    assert b"data-similar-note" not in response.content  # Tops is a root: nothing to fall back to, nothing to say


def test_a_small_category_falls_back_to_its_parent_on_the_page(client):
    bags = CategoryFactory(name="Bags", slug="bags")
    messenger = CategoryFactory(name="Messenger Bag", slug="bags-messenger-bag", parent=bags)
    handbags = CategoryFactory(name="Handbags", slug="bags-handbags", parent=bags)
    products = [ProductFactory(category=messenger if i < 2 else handbags, title=f"Bag {i}") for i in range(6)]
    images = [ProductImageFactory(product=p, colour=(40 * i, 80, 120), pattern=i % 4 + 1) for i, p in enumerate(products)]
    images_embed(image_ids=[image.id for image in images])
    response = client.get(products[0].get_absolute_url() + "?same_category=1")
    similar = response.context["similar"]
    assert _titles(similar.matches)[0] == "Bag 1" and len(similar.matches) == 5
    assert similar.category == bags
    assert "Fewer than 12 similar products in Messenger Bag: showing Bags as well." in response.content.decode()


def test_listings_of_one_photo_share_a_card_that_names_the_other_sellers(client, catalogue):
    photo = make_image_bytes(colour=(5, 150, 90), pattern=2)
    sellers = []
    for name in ("Eastwind Traders", "Westwind Traders"):
        product = ProductFactory(category=catalogue[0].category, merchant=MerchantFactory(name=name), title=f"Tee from {name}")
        sellers.append(ProductImageFactory(product=product, data=photo))
    images_embed(image_ids=[image.id for image in sellers])
    response = client.get(catalogue[0].get_absolute_url())
    titles = _titles(response.context["similar"].matches)
    assert len({"Tee from Eastwind Traders", "Tee from Westwind Traders"} & set(titles)) == 1
    html = response.content.decode()
    assert "Also sold by" in html
    assert html.count('class="card__title">Tee from ') == 1  # one card, the other listing named by its merchant
    assert ("Eastwind Traders</a>" in html) != ("Westwind Traders</a>" in html)


def test_product_page_without_embedding_says_so(client):
    product = ProductFactory()
    ProductImageFactory(product=product)
    response = client.get(product.get_absolute_url())
    assert response.context["similar"].matches == []
    assert b"No visually similar products yet" in response.content


def test_home_shows_the_personal_strips_first_once_there_is_history(client, catalogue):
    response = client.get(reverse("storefront:home"))
    assert response.context["recommended"] == [] and response.context["recently_viewed"] == []
    assert b"data-personal" not in response.content and b"Recently viewed" not in response.content
    for product in (catalogue[0], catalogue[6], catalogue[1]):
        client.get(product.get_absolute_url())
    response = client.get(reverse("storefront:home"))
    assert [p.title for p in response.context["recently_viewed"]] == ["Item 1", "Item 6", "Item 0"]
    recommended = _titles(response.context["recommended"])
    assert recommended and not {"Item 0", "Item 1", "Item 6"} & set(recommended)
    html = response.content.decode()
    # Above the fold: the strips come before the hero, the categories and the newest products.
    assert html.index("Recently viewed") < html.index("Recommended for you") < html.index('class="hero"')


def test_product_page_shows_recently_viewed_without_the_product_itself(client, catalogue):
    client.get(catalogue[0].get_absolute_url())
    client.get(catalogue[5].get_absolute_url())
    response = client.get(catalogue[0].get_absolute_url())
    assert [p.title for p in response.context["recently_viewed"]] == ["Item 5"]


def test_a_signed_in_shopper_has_history_rows_not_a_session_list(client, catalogue):
    user = get_user_model().objects.create_user(username="shopper", password="a long test password")
    client.force_login(user)
    client.get(catalogue[3].get_absolute_url())
    assert list(ProductView.objects.filter(user=user).values_list("product_id", flat=True)) == [catalogue[3].id]
    assert "recently_viewed" not in client.session


def test_product_page_query_count_is_bounded(client, catalogue, django_assert_max_num_queries):
    for product in catalogue[:6]:
        client.get(product.get_absolute_url())  # a session with a history
    # The page's own (product, images, category path, session read and write) plus the similar
    # strip (the active model, its precomputed strip: none here, then the vector, duplicates,
    # search, cards), complete the look (the active model, the looks of the product and its
    # similar products: none here) and recently viewed (2).
    with django_assert_max_num_queries(20):
        client.get(catalogue[7].get_absolute_url())


def test_product_page_with_a_precomputed_strip_does_not_search(client, catalogue, django_assert_max_num_queries):
    similar_strips_refresh(product_ids=[catalogue[7].id])
    for product in catalogue[:6]:
        client.get(product.get_absolute_url())
    # As above, the similar strip read from its row: no vector, duplicates or search.
    with django_assert_max_num_queries(15):
        client.get(catalogue[7].get_absolute_url())


def test_product_page_query_count_for_a_signed_in_shopper(client, catalogue, django_assert_max_num_queries):
    client.force_login(get_user_model().objects.create_user(username="shopper", password="a long test password"))
    for product in catalogue[:6]:
        client.get(product.get_absolute_url())
    # As above, plus the user, the history read and its write (savepoint, upsert, prune, release).
    with django_assert_max_num_queries(23):
        client.get(catalogue[7].get_absolute_url())


def test_home_query_count_is_bounded(client, catalogue, django_assert_max_num_queries):
    for product in catalogue:
        client.get(product.get_absolute_url())
    # The session, categories (2), newest (2), recently viewed (2), recommended (the active
    # model, 2 + a search per interest (two here: tops and shoes; at most four) x 3 + 2 + 2).
    with django_assert_max_num_queries(16):
        client.get(reverse("storefront:home"))

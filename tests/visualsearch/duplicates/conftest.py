import pytest
from django.contrib.auth import get_user_model

from shop.images import image_check
from shop.services import product_image_add
from tests.factories import CategoryFactory, MerchantFactory, ProductFactory
from tests.visualsearch.duplicates.photos import TROUSERS, jpeg, photo, relisted_copy
from visualsearch.indexing import images_embed


def add_product(*, data: bytes, title: str, category=None, merchant=None, **fields):
    product = ProductFactory(title=title, category=category or CategoryFactory(), merchant=merchant or MerchantFactory(), **fields)
    image, _ = product_image_add(product=product, image=image_check(data), announce=False)
    return product, image


@pytest.fixture
def catalogue():
    """Five products: an original, an exact copy (same bytes), a re-listed near copy,
    another design of the same kind and colour, and another colourway of the original."""
    tees = CategoryFactory(name="Tshirts", slug="apparel-tshirts")
    north, south = MerchantFactory(name="Northwind"), MerchantFactory(name="Southwind")
    original = jpeg(photo(print_seed=3))
    products, images = {}, {}
    for key, data, merchant in [
        ("original", original, north),
        ("exact", original, south),
        ("near", jpeg(relisted_copy(photo(print_seed=3)), quality=70), south),
        ("other_design", jpeg(photo(print_seed=11, shape=TROUSERS)), north),
        ("other_colour", jpeg(photo(print_seed=3, colour=(28, 40, 92))), north),
    ]:
        products[key], images[key] = add_product(data=data, title=f"Red tee ({key})", category=tees, merchant=merchant)
    return products, images


@pytest.fixture
def embedded(catalogue):
    products, images = catalogue
    images_embed(image_ids=[img.id for img in images.values()])
    return products, images


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("merch", password="pw-merch-123", is_staff=True)


@pytest.fixture
def shopper(db):
    return get_user_model().objects.create_user("shopper", password="pw-shop-123")

"""Error answers and the favicon: hidden listings, styled 404/500 pages, JSON under /api/."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.urls import reverse

from shop.models import Product
from tests.factories import ProductFactory
from tests.visualsearch.test_selectors import catalogue, shared_catalogue  # noqa: F401 (fixtures)
from visualsearch.duplicates import services
from visualsearch.duplicates.models import DuplicateFlag

pytestmark = pytest.mark.django_db


def confirm_duplicate(*, keep: Product, hide: Product) -> DuplicateFlag:
    a, b = sorted([keep, hide], key=lambda p: p.id)
    flag = DuplicateFlag.objects.create(product_a=a, product_b=b, kind="near", score=0.9, cosine=0.95, hash_distance=12)
    reviewer = get_user_model().objects.get_or_create(username="reviewer", defaults={"is_staff": True})[0]
    return services.duplicate_flag_confirm(flag=flag, actor=reviewer, keep_product_id=keep.id)


@pytest.mark.parametrize("debug", [False, True])
def test_a_listing_hidden_as_a_duplicate_sends_the_shopper_to_the_one_kept(client, settings, debug):
    settings.DEBUG = debug  # the demo runs with DEBUG on: never Django's technical 404 page
    kept, copy = ProductFactory(), ProductFactory()
    confirm_duplicate(keep=kept, hide=copy)
    response = client.get(copy.get_absolute_url())
    assert response.status_code == 302  # not 301: a reviewer can undo the decision
    assert response["Location"] == kept.get_absolute_url()
    assert client.get(response["Location"]).status_code == 200


def test_the_redirect_follows_a_kept_listing_that_was_hidden_in_turn(client):
    first, second, third = ProductFactory(), ProductFactory(), ProductFactory()
    confirm_duplicate(keep=second, hide=first)
    confirm_duplicate(keep=third, hide=second)
    assert client.get(first.get_absolute_url())["Location"] == third.get_absolute_url()


def test_when_nothing_of_the_pair_is_left_the_page_says_gone(client):
    kept, copy = ProductFactory(), ProductFactory()
    confirm_duplicate(keep=kept, hide=copy)
    Product.objects.filter(id=kept.id).update(status=Product.Status.HIDDEN)
    response = client.get(copy.get_absolute_url())
    assert response.status_code == 410
    assert "is no longer available" in response.content.decode()


def test_a_hidden_listing_shows_similar_products_that_are_for_sale(client, catalogue, settings):
    settings.DEBUG = True
    navy = catalogue.products["navy_tee"]
    Product.objects.filter(id=navy.id).update(status=Product.Status.HIDDEN)  # taken down, not a duplicate
    response = client.get(navy.get_absolute_url())
    html = response.content.decode()
    assert response.status_code == 410
    assert f"{navy.title} is no longer available" in html
    assert '<meta name="robots" content="noindex">' in html
    similar = response.context["similar"].matches
    assert similar and navy.id not in {m.product.id for m in similar}
    assert similar[0].product.get_absolute_url() in html


def test_an_unknown_address_gets_the_styled_404(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "couldn’t find that page" in html and 'class="site-header"' in html


def test_a_crash_gets_the_styled_500_page(client, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("storefront.views.selectors.category_list_with_counts", broken)
    client.raise_request_exception = False
    response = client.get("/")
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/products/abc/similar", "/api/duplicates/null,null/confirm", "/api/no-such-endpoint"])
def test_api_addresses_that_match_no_route_answer_json(client, settings, debug, path):
    settings.DEBUG = debug
    response = client.post(path) if path.endswith("confirm") else client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


def test_an_api_crash_answers_json(client, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("the index went away")

    monkeypatch.setattr("recommender.api.product_get_active", broken)
    client.raise_request_exception = False
    response = client.get("/api/products/1/similar")
    assert response.status_code == 500
    assert response.json() == {"detail": "Server error."}


def test_favicon(client):
    html = client.get(reverse("storefront:home")).content.decode()
    assert '<link rel="icon" href="/static/img/favicon.svg" type="image/svg+xml">' in html
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == "/static/img/favicon.ico"
    with open(finders.find("img/favicon.ico"), "rb") as ico:
        assert ico.read(4) == b"\x00\x00\x01\x00"  # an ICO file
    with open(finders.find("img/favicon.svg")) as svg:
        assert svg.read().startswith("<svg")

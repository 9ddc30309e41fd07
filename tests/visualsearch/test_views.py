"""The storefront's "Shop the look" page: /shop-the-look/."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.test import Client
from django.urls import reverse

from shop.models import Product
from tests.factories import make_image_bytes
from tests.visualsearch.test_api import truncated_jpeg
from tests.visualsearch.test_selectors import IMAGE_SIZE, side_by_side
from tests.visualsearch.test_selectors import catalogue, shared_catalogue  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture
def url() -> str:
    return reverse("visualsearch:shop_the_look")


def post(client, url: str, data: bytes | None, *, field: str = "image", **fields):
    payload = {"x": "", "y": "", "w": "", "h": "", "category": "", "gender": "", "min_price": "", "max_price": ""}
    payload.update({key: str(value) for key, value in fields.items()})
    if data is not None:
        payload[field] = SimpleUploadedFile("photo.jpg", data, content_type="image/jpeg")
    return client.post(url, payload)


def result_slugs(response) -> list[str]:
    """Product links in the results grid, in page order."""
    html = response.content.decode()
    grid = html[html.index('id="results"'):]
    return re.findall(r'<a class="card__link" href="/products/([^/]+)/">', grid)


def test_the_empty_page_offers_the_upload_form(client, url):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'enctype="multipart/form-data"' in html and 'method="post"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert re.search(r'<input type="file" name="image"[^>]*accept="image/\*"', html)
    # Phones open the camera straight away from the separate input.
    assert re.search(r'<input type="file" name="camera"[^>]*accept="image/\*"[^>]*capture="environment"', html) or re.search(
        r'<input type="file" name="camera"[^>]*capture="environment"[^>]*accept="image/\*"', html
    )
    for name in ("x", "y", "w", "h"):
        assert f'<input type="hidden" name="{name}" value=""' in html
    assert '<select name="category"' in html and '<select name="gender"' in html
    assert 'name="min_price"' in html and 'name="max_price"' in html
    assert "/static/css/visualsearch.css" in html and "/static/js/shop_the_look.js" in html
    assert 'class="stl-steps"' in html  # how it works, instead of results
    assert response.context["matches"] is None


def test_searching_with_a_catalogue_photo_puts_that_product_first(client, url, catalogue):
    response = post(client, url, catalogue.images["black_jeans"])
    assert response.status_code == 200
    matches = response.context["matches"]
    assert matches[0].product == catalogue.products["black_jeans"] and matches[0].score > 0.99
    slugs = result_slugs(response)
    assert slugs[0] == "black-jeans" and len(slugs) == len(catalogue.products)  # all 10, under k=24
    html = response.content.decode()
    assert re.search(r'data-score="(0\.99\d\d|1\.0000)">(99|100)% match<', html)
    assert "₹1,999" in html  # the price, formatted as on the storefront
    # The photo is shown back inline (never stored), with no box drawn.
    assert 'src="data:image/jpeg;base64,' in html
    assert response.context["preview"].box is None


def test_the_box_searches_only_the_boxed_piece(client, url, catalogue):
    outfit = side_by_side(catalogue.images["yellow_tee"], catalogue.images["purple_sneaker"])
    width, height = IMAGE_SIZE
    right = post(client, url, outfit, x=width, y=0, w=width, h=height)
    left = post(client, url, outfit, x=0, y=0, w=width, h=height)
    assert result_slugs(right)[0] == "purple-sneaker"
    assert result_slugs(left)[0] == "yellow-tee"
    # The box is drawn over the photo shown beside the results (right half).
    assert right.context["preview"].box == {"left": 50.0, "top": 0.0, "width": 50.0, "height": 100.0}
    assert "left: 50.000%; top: 0.000%; width: 50.000%; height: 100.000%" in right.content.decode()
    assert "Matched to the boxed area" in right.content.decode()


def test_filters_narrow_the_results(client, url, catalogue):
    photo = catalogue.images["green_shirt"]
    assert set(result_slugs(post(client, url, photo, category="apparel-topwear"))) == {
        "red-tee", "navy-tee", "yellow-tee", "green-shirt", "pink-shirt",
    }
    assert set(result_slugs(post(client, url, photo, gender="women", max_price="1000"))) == {"navy-tee", "yellow-tee"}
    assert set(result_slugs(post(client, url, photo, min_price="3000"))) == {"orange-sneaker", "purple-sneaker"}
    nothing = post(client, url, photo, min_price="100000")
    assert nothing.context["matches"] == [] and "No matching pieces" in nothing.content.decode()


def test_hidden_products_are_not_shown(client, url, catalogue):
    Product.objects.filter(id=catalogue.products["red_tee"].id).update(status=Product.Status.HIDDEN)
    assert "red-tee" not in result_slugs(post(client, url, catalogue.images["red_tee"]))


def test_a_photo_taken_with_the_camera_input_works_too(client, url, catalogue):
    response = post(client, url, catalogue.images["orange_sneaker"], field="camera")
    assert result_slugs(response)[0] == "orange-sneaker"


@pytest.mark.parametrize(
    ("data", "fields", "message"),
    [
        (None, {}, "Choose a photo to search with."),
        (b"", {}, "The submitted file is empty."),
        (b"%PDF-1.4 not a photo", {}, "The file is not a readable image."),
        (truncated_jpeg(), {}, "The file is not a readable image."),
        (make_image_bytes(), {"x": 400, "y": 400, "w": 50, "h": 50}, "The box must overlap the photo"),
        (make_image_bytes(), {"x": 5, "y": 5}, "Give all four of x, y, w and h"),
        (make_image_bytes(), {"x": 5, "y": 5, "w": -4, "h": 10}, "The box is not valid"),
        (make_image_bytes(), {"x": "a", "y": 5, "w": 4, "h": 10}, "The box is not valid"),
        (make_image_bytes(), {"min_price": "cheap"}, "Enter a number."),
        (make_image_bytes(), {"min_price": "-5"}, "greater than or equal to 0"),
        (make_image_bytes(), {"min_price": "900", "max_price": "100"}, "Max price must not be below min price."),
        (make_image_bytes(), {"category": "no-such-category"}, "Select a valid choice."),
        (make_image_bytes(), {"gender": "robots"}, "Select a valid choice."),
    ],
)
def test_bad_input_is_a_form_error_not_a_crash(client, url, data, fields, message):
    response = post(client, url, data, **fields)
    assert response.status_code == 200
    form = response.context["form"]
    assert not form.is_valid()
    assert message in " ".join(str(error) for errors in form.errors.values() for error in errors)
    html = response.content.decode()
    assert message.replace("'", "&#x27;") in html
    assert response.context["matches"] is None
    assert "We could not search yet" in html  # where #results lands on a phone


def test_too_large_a_photo_is_a_form_error(client, url, settings):
    settings.SHOP_MAX_UPLOAD_BYTES = 1000
    response = post(client, url, make_image_bytes(size=(400, 400), pattern=9))
    assert "larger than" in " ".join(response.context["form"].errors["image"])


def test_the_form_is_protected_against_csrf(url, catalogue):
    client = Client(enforce_csrf_checks=True)
    assert post(client, url, catalogue.images["red_tee"]).status_code == 403
    token = client.get(url).context["csrf_token"]
    response = post(client, url, catalogue.images["red_tee"], csrfmiddlewaretoken=str(token))
    assert response.status_code == 200 and result_slugs(response)[0] == "red-tee"


def test_the_photo_is_neither_stored_nor_spilled_to_a_temporary_file(client, url, catalogue, settings, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the upload was spilled to a temporary file")

    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10  # Django's default handlers would spill anything bigger
    monkeypatch.setattr(TemporaryFileUploadHandler, "new_file", refuse)
    media_before = sorted(p for p in settings.MEDIA_ROOT.rglob("*")) if settings.MEDIA_ROOT.exists() else []
    response = post(client, url, catalogue.images["white_sneaker"])
    assert result_slugs(response)[0] == "white-sneaker"
    media_after = sorted(p for p in settings.MEDIA_ROOT.rglob("*")) if settings.MEDIA_ROOT.exists() else []
    assert media_after == media_before


def test_other_methods_are_refused(client, url):
    assert client.put(url).status_code == 405

"""The storefront's "Shop the look": the upload (/shop-the-look/) and the kept search's page
(/shop-the-look/<id>/), which works without JavaScript: every choice is a link or a GET form."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from shop.models import Product
from tests.factories import make_image_bytes
from tests.visualsearch.test_api import truncated_jpeg
from tests.visualsearch.test_selectors import IMAGE_SIZE, side_by_side
from tests.visualsearch.test_selectors import catalogue, shared_catalogue  # noqa: F401 (fixtures)
from visualsearch import looks
from visualsearch.models import PhotoSearch

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


def search(client, url: str, data: bytes, **fields):
    """Upload, then follow the 303 to the search's own page."""
    response = post(client, url, data, **fields)
    assert response.status_code == 303, getattr(response, "context", None) and response.context["form"].errors
    return client.get(response["Location"])


def result_slugs(response) -> list[str]:
    """Product links in the results grid, in page order."""
    html = response.content.decode()
    grid = html[html.index('id="results"'):] if 'id="results"' in html else html
    return re.findall(r'<a class="card__link" href="/products/([^/]+)/">', grid)


def test_the_upload_page_offers_the_form(client, url):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'enctype="multipart/form-data"' in html and 'method="post"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert re.search(r'<input type="file" name="image"[^>]*accept="image/\*"', html)
    assert re.search(r'<input type="file" name="camera"[^>]*capture="environment"', html) or re.search(
        r'<input type="file" name="camera"[^>]*accept="image/\*"[^>]*capture="environment"', html
    )
    for name in ("x", "y", "w", "h"):
        assert f'<input type="hidden" name="{name}" value=""' in html
    assert '<select name="category"' in html and '<select name="gender"' in html
    assert "/static/css/visualsearch.css" in html and "/static/js/shop_the_look.js" in html
    assert 'class="stl-steps"' in html


def test_a_search_lives_at_its_own_url(client, url, catalogue):
    response = post(client, url, catalogue.images["black_jeans"])
    assert response.status_code == 303
    kept = PhotoSearch.objects.get()
    assert response["Location"] == f"/shop-the-look/{kept.id}/"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert result_slugs(page)[0] == "black-jeans"  # the listing's own photo: the whole photo, searched first
    whole = client.get(response["Location"], {"item": 0}).content.decode()
    assert re.search(r'data-score="(0\.99\d\d|1\.0000)" data-same-photo [^>]*>Same photo<', whole)
    html = page.content.decode()
    assert "₹1,999" in html
    assert f'src="/shop-the-look/{kept.id}/photo.jpg"' in html
    assert "Whole photo" in html and 'name="robots" content="noindex"' in html
    # Reload and share: the same URL gives the same results, with no upload.
    assert result_slugs(client.get(response["Location"])) == result_slugs(page)
    assert result_slugs(Client().get(response["Location"])) == result_slugs(page)
    # The photo, kept shrunk, is served from the search's id only.
    photo = client.get(reverse("visualsearch:look_photo", args=[kept.id]))
    assert photo.status_code == 200 and photo["Content-Type"] == "image/jpeg" and "private" in photo["Cache-Control"]
    assert Image.open(io.BytesIO(photo.content)).size == (kept.width, kept.height)


def test_the_results_endpoint_answers_the_same_query_for_the_page_script(client, url, catalogue):
    page = search(client, url, catalogue.images["green_shirt"])
    kept = PhotoSearch.objects.get()
    fragment = client.get(reverse("visualsearch:look_results", args=[kept.id]), {"auto": "0"})
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()
    assert result_slugs(fragment)[0] == "green-shirt" == result_slugs(page)[0]


def test_garments_of_a_flat_lay_are_items_with_their_own_results(client, url, catalogue):
    outfit = side_by_side(catalogue.images["yellow_tee"], catalogue.images["purple_sneaker"], margin=40)
    page = search(client, url, outfit)
    kept = PhotoSearch.objects.get()
    kinds = [item["kind"] for item in kept.items]
    assert kinds[0] == "whole" and len(kinds) == 3, kinds
    html = page.content.decode()
    assert len(re.findall(r'class="stl-chip[^"]*" href="\?item=', html)) == 3
    assert len(re.findall(r'class="stl-hotspot[ "]', html)) == 2
    firsts = {result_slugs(client.get(page.request["PATH_INFO"], {"item": n, "auto": "0"}))[0] for n in (1, 2)}
    assert firsts == {"yellow-tee", "purple-sneaker"}


def test_a_box_searches_only_the_boxed_piece(client, url, catalogue):
    outfit = side_by_side(catalogue.images["yellow_tee"], catalogue.images["purple_sneaker"])
    width, height = IMAGE_SIZE
    right = search(client, url, outfit, x=width, y=0, w=width, h=height)  # drawn before the upload
    assert result_slugs(right)[0] == "purple-sneaker"
    assert "Your box" in right.content.decode()
    left = client.get(right.request["PATH_INFO"], {"x": 0, "y": 0, "w": width, "h": height})
    assert result_slugs(left)[0] == "yellow-tee"
    assert re.search(r'name="w" id="box-w" min="16" value="%d"' % width, left.content.decode())
    off = client.get(right.request["PATH_INFO"], {"x": 900, "y": 900, "w": 50, "h": 50})
    assert off.status_code == 400 and "The box must overlap the photo" in off.content.decode()
    half = client.get(right.request["PATH_INFO"], {"x": 5, "y": 5})
    assert "Give all four of x, y, w and h" in half.content.decode()


def test_filters_and_categories_narrow_the_results(client, url, catalogue):
    page = search(client, url, catalogue.images["green_shirt"])
    path = page.request["PATH_INFO"]
    assert set(result_slugs(client.get(path, {"category": "apparel-topwear"}))) == {
        "red-tee", "navy-tee", "yellow-tee", "green-shirt", "pink-shirt",
    }
    assert set(result_slugs(client.get(path, {"gender": "women", "max_price": "1000", "auto": "0"}))) == {"navy-tee", "yellow-tee"}
    assert set(result_slugs(client.get(path, {"min_price": "3000", "auto": "0"}))) == {"orange-sneaker", "purple-sneaker"}
    nothing = client.get(path, {"min_price": "100000"})
    assert result_slugs(nothing) == [] and "Nothing passes these filters" in nothing.content.decode()


def test_the_guessed_category_is_shown_with_its_alternatives(client, url, catalogue):
    page = search(client, url, catalogue.images["black_jeans"])
    html = page.content.decode()
    assert "Looks like: <strong data-guess-name>" in html
    assert re.search(r'href="\?[^"]*category=apparel-bottomwear-jeans[^"]*#results"', html)
    assert re.search(r'href="\?[^"]*auto=0[^"]*#results" data-refine-link>Any category', html)
    decision = page.context["outcome"].category
    assert decision.top.category.slug == "apparel-bottomwear-jeans"
    every = client.get(page.request["PATH_INFO"], {"auto": "0"})
    assert len(result_slugs(every)) == len(catalogue.products)
    if decision.applied is not None:  # confident: only jeans (and their shelf) are shown
        assert set(result_slugs(page)) <= {"black-jeans", "blue-jeans"} | set(result_slugs(every))


def test_hidden_products_are_not_shown(client, url, catalogue):
    Product.objects.filter(id=catalogue.products["red_tee"].id).update(status=Product.Status.HIDDEN)
    assert "red-tee" not in result_slugs(search(client, url, catalogue.images["red_tee"]))


def test_a_photo_taken_with_the_camera_input_works_too(client, url, catalogue):
    response = post(client, url, catalogue.images["orange_sneaker"], field="camera")
    assert result_slugs(client.get(response["Location"]))[0] == "orange-sneaker"


@pytest.mark.parametrize(
    ("data", "fields", "message"),
    [
        (None, {}, "Choose a photo to search with."),
        (b"", {}, "The submitted file is empty."),
        (b"%PDF-1.4 not a photo", {}, "The file is not a readable image."),
        (truncated_jpeg(), {}, "The file is not a readable image."),
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
    assert "We could not search yet" in html
    assert not PhotoSearch.objects.exists()


def test_too_large_a_photo_is_a_form_error(client, url, settings):
    settings.SHOP_MAX_UPLOAD_BYTES = 1000
    response = post(client, url, make_image_bytes(size=(400, 400), pattern=9))
    assert "larger than" in " ".join(response.context["form"].errors["image"])


def test_a_phone_photo_of_8000_by_8000_pixels_is_searched(client, url, catalogue):
    """Under the byte cap but over the decoder's pixel cap: JPEG is read at 1/8 scale."""
    big = Image.new("RGB", (8000, 8000), (240, 240, 240))
    big.paste(Image.open(io.BytesIO(catalogue.images["purple_sneaker"])).resize((6000, 7500)), (1000, 250))
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG", quality=70)
    response = post(client, url, buffer.getvalue())
    assert response.status_code == 303
    kept = PhotoSearch.objects.get()
    assert max(kept.width, kept.height) == PhotoSearch.STORED_SIDE
    assert result_slugs(client.get(response["Location"], {"item": 0, "auto": "0"}))[0] == "purple-sneaker"


def test_the_form_is_protected_against_csrf(url, catalogue):
    client = Client(enforce_csrf_checks=True)
    assert post(client, url, catalogue.images["red_tee"]).status_code == 403
    token = client.get(url).context["csrf_token"]
    response = post(client, url, catalogue.images["red_tee"], csrfmiddlewaretoken=str(token))
    # The search ran: the whole photo (item 0) finds the product whose picture it is.
    assert response.status_code == 303 and result_slugs(client.get(response["Location"], {"item": 0, "auto": "0"}))[0] == "red-tee"


def test_the_upload_never_touches_the_disk(client, url, catalogue, settings, monkeypatch):
    """Not spilled to a temporary file, not written to media: only a shrunk JPEG is kept,
    in the database, under the search's random id, for the retention period."""

    def refuse(*args, **kwargs):
        raise AssertionError("the upload was spilled to a temporary file")

    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10  # Django's default handlers would spill anything bigger
    monkeypatch.setattr(TemporaryFileUploadHandler, "new_file", refuse)
    media_before = sorted(p for p in settings.MEDIA_ROOT.rglob("*")) if settings.MEDIA_ROOT.exists() else []
    assert result_slugs(search(client, url, catalogue.images["white_sneaker"]))[0] == "white-sneaker"
    media_after = sorted(p for p in settings.MEDIA_ROOT.rglob("*")) if settings.MEDIA_ROOT.exists() else []
    assert media_after == media_before
    kept = PhotoSearch.objects.get()
    assert bytes(kept.photo)[:3] == b"\xff\xd8\xff"
    hours = (kept.expires_at - kept.created_at) / timedelta(hours=1)
    assert abs(hours - settings.VISUALSEARCH_SEARCH_RETENTION_HOURS) < 0.01
    # ... stored as it is: a JPEG does not compress, and trying cost each search 0.4-0.5 ms.
    with connection.cursor() as cursor:
        cursor.execute("SELECT attstorage FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'photo'",
                       [PhotoSearch._meta.db_table])
        assert cursor.fetchone() == ("e",)


def test_an_expired_search_is_gone_and_swept(client, url, catalogue):
    response = post(client, url, catalogue.images["red_tee"])
    kept = PhotoSearch.objects.get()
    PhotoSearch.objects.filter(id=kept.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    gone = client.get(response["Location"])
    assert gone.status_code == 410 and "This search has expired" in gone.content.decode()
    assert client.get(reverse("visualsearch:look_photo", args=[kept.id])).status_code == 404
    assert client.get("/shop-the-look/00000000-0000-4000-8000-000000000000/").status_code == 410
    assert client.get("/shop-the-look/not-a-uuid/").status_code == 404
    assert looks.looks_expire() == 1 and not PhotoSearch.objects.exists()


def test_moving_boxes_is_rate_limited_with_a_clear_answer(client, url, catalogue, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "look_refine": "2/min"}}
    response = post(client, url, catalogue.images["red_tee"])
    results = reverse("visualsearch:look_results", args=[PhotoSearch.objects.get().id])
    codes = [client.get(results, {"x": 0, "y": 0, "w": 40 + n, "h": 40}).status_code for n in range(3)]
    assert codes == [200, 200, 429]
    assert client.get(response["Location"]).status_code == 200  # the plain page (no query) is never refused


def test_other_methods_are_refused(client, url):
    assert client.put(url).status_code == 405


def test_a_search_narrowed_to_several_categories_says_which(client, url, catalogue, monkeypatch):
    """A small guessed category widened by the next guesses (``narrowing_scope``): the page
    names every category it shows, and shows only those."""
    from visualsearch import photos
    from visualsearch.categories import CategoryDecision, CategoryGuess

    c = catalogue.categories
    guesses = [CategoryGuess(c["jeans"], 0.7), CategoryGuess(c["shirts"], 0.2)]
    decision = CategoryDecision(guesses=guesses, source="classifier", threshold=0.5, applied=c["jeans"],
                                scope=(c["jeans"], c["shirts"]))
    monkeypatch.setattr(photos, "category_decide", lambda **kwargs: decision)
    monkeypatch.setattr(photos, "search_settings", lambda name: photos.SearchSettings(
        colour_weight=0.0, relevance_floor=-1.0, narrow_gate=2.0))
    page = search(client, url, catalogue.images["red_tee"])
    assert "showing Jeans and Shirts only" in page.content.decode()
    assert set(result_slugs(page)) == {"black-jeans", "blue-jeans", "green-shirt", "pink-shirt"}

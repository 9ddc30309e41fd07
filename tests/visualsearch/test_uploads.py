"""Hostile uploads through the two photo searches (issue 7): the corpus, fuzzing, body
size limits and rate limits. Whatever comes in, the answer is a 2xx or a 4xx that says
what is wrong, never a 5xx.

The photo searches judge by content only (the upload is never stored as sent and its name
never used; a search keeps a shrunk JPEG of it for a day): the corpus cases refused only for
a lying name or content type are searched.
"""

from __future__ import annotations

import html

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, RequestFactory
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from tests.factories import make_image_bytes
from tests.shop.test_images import mutated_image, random_bytes
from tests.upload_corpus import corpus
from visualsearch.forms import PhotoUploadHandler, discard_body, refused_body_read_max_bytes
from visualsearch.models import PhotoSearch

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:Corrupt EXIF data")]

API = "/api/search/image"
PAGE = "/shop-the-look/"
CASES = corpus()
EMPTY_FORM = {"x": "", "y": "", "w": "", "h": "", "category": "", "gender": "", "min_price": "", "max_price": ""}


def api_post(client, data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg", **fields):
    return client.post(API, {"image": SimpleUploadedFile(name, data, content_type=content_type), "k": "3", **fields})


def page_post(client, data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg", **fields):
    return client.post(PAGE, {**EMPTY_FORM, "image": SimpleUploadedFile(name, data, content_type=content_type), **fields})


def page_errors(response) -> str:
    form = response.context["form"]
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus_through_the_api(client, case):
    response = api_post(client, case.data, case.name, case.content_type)
    if case.accepted_by_search:
        assert response.status_code == 200, response.content
        assert response.json()["results"] == []  # an empty catalogue
    else:
        assert response.status_code == 400, response.content
        assert case.message in " ".join(response.json()["image"])


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus_through_the_storefront(client, case):
    response = page_post(client, case.data, case.name, case.content_type)
    if case.accepted_by_search:
        assert response.status_code == 303, page_errors(response)
        search = PhotoSearch.objects.get()
        assert response["Location"] == f"/shop-the-look/{search.id}/"
        # Kept upright, as searched (shrunk to at most STORED_SIDE, never enlarged).
        width, height = case.size
        scale = min(1.0, PhotoSearch.STORED_SIDE / max(width, height))
        assert abs(search.width - width * scale) <= 1 and abs(search.height - height * scale) <= 1
    else:
        assert response.status_code == 200
        assert case.message in page_errors(response)
        assert html.escape(case.message) in response.content.decode()


# Bodies far over the cap: 413 before anything reads them ---------------------------------


@pytest.fixture
def never_parsed(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the body was parsed")

    monkeypatch.setattr(PhotoUploadHandler, "new_file", refuse)


def test_a_huge_body_is_a_413_on_the_api(client, settings, never_parsed):
    settings.SHOP_MAX_UPLOAD_BYTES = 1000  # the body may be up to 1000 bytes + 1 MB
    response = api_post(client, b"\xff\xd8\xff" + b"\x00" * (1024 * 1024 + 2000))
    assert response.status_code == 413
    assert response.json() == {"image": ["The file is larger than 1000 bytes."]}


def test_a_huge_body_is_a_413_page_on_the_storefront(client, settings, never_parsed):
    settings.SHOP_MAX_UPLOAD_BYTES = 1000
    response = page_post(client, b"\xff\xd8\xff" + b"\x00" * (1024 * 1024 + 2000))
    assert response.status_code == 413
    body = response.content.decode()
    assert "The file is larger than 1000 bytes." in body and "We could not search yet" in body
    assert 'name="image"' in body  # the form is there to try again


def test_a_refused_body_is_read_and_dropped_up_to_a_bound(settings):
    """So that clients get the 413/429, not a connection reset (tests/visualsearch/test_refusals_over_http.py)."""
    settings.SHOP_MAX_UPLOAD_BYTES = 1000
    bound = refused_body_read_max_bytes()
    assert bound == 2 * (1000 + 1024 * 1024)
    factory = RequestFactory()
    huge = factory.post(API, data=b"x" * (bound + 500_000), content_type="application/octet-stream")
    assert discard_body(huge) == bound
    assert discard_body(huge) == 0  # read once at most
    small = factory.post(API, data=b"x" * 5000, content_type="application/octet-stream")
    assert discard_body(small) == 5000
    no_length = factory.post(API, data=b"x" * 5000, content_type="application/octet-stream", CONTENT_LENGTH="many")
    assert discard_body(no_length) == 0


def test_a_file_just_over_the_cap_is_a_clear_400(client, settings):
    settings.SHOP_MAX_UPLOAD_BYTES = 1000
    response = api_post(client, make_image_bytes(size=(300, 300), pattern=9))
    assert response.status_code == 400 and "larger than 1000 bytes" in response.json()["image"][0]


def test_oversized_form_fields_are_a_400_not_a_500(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000  # non-file fields held in memory
    big = "1" * 5000
    assert api_post(client, make_image_bytes(), min_price=big).status_code == 400
    assert page_post(client, make_image_bytes(), min_price=big).status_code == 400
    too_many = {f"f{i}": "x" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 5)}
    assert api_post(client, make_image_bytes(), **too_many).status_code == 400
    assert page_post(client, make_image_bytes(), **too_many).status_code == 400


def test_a_malformed_multipart_body_is_a_400(client):
    body = b"--xyz\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\r\n\xff\xd8"  # never closed
    assert client.post(API, body, content_type="multipart/form-data; boundary=xyz").status_code == 400
    response = client.post(API, b"garbage", content_type="multipart/form-data")  # no boundary
    assert response.status_code == 400
    assert client.post(PAGE, b"garbage", content_type="multipart/form-data").status_code in (400, 403)


def test_malicious_names_reach_nothing(client, settings):
    settings.MEDIA_ROOT.mkdir(parents=True, exist_ok=True)
    for name in ("../../etc/passwd.jpg", "a\x00b.jpg", "x" * 5000 + ".jpg", "..\\..\\boot.ini", "/etc/shadow"):
        assert api_post(client, make_image_bytes(), name=name).status_code == 200
        assert page_post(client, make_image_bytes(), name=name).status_code == 303
    assert list(settings.MEDIA_ROOT.rglob("*")) == []  # kept searches live in the database, under a random id


# Fuzzing through the views: fewer examples (each is a request), same rule -------------------

VIEW_FUZZ = hypothesis_settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@VIEW_FUZZ
@given(data=st.one_of(mutated_image(), random_bytes()))
def test_fuzz_the_api_never_answers_5xx(client, data):
    response = api_post(client, data)
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 400:
        assert response.json()["image"]


@VIEW_FUZZ
@given(data=st.one_of(mutated_image(), random_bytes()))
def test_fuzz_the_storefront_never_answers_5xx(client, data):
    response = page_post(client, data)
    assert response.status_code in (200, 303)
    if response.status_code == 200:
        assert response.context["form"].errors["image"]


# Rate limits ----------------------------------------------------------------------------------


@pytest.fixture
def rates(settings):
    def set_rates(**rates):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}

    return set_rates


def test_the_search_api_is_rate_limited_per_client(client, rates):
    rates(image_search="3/min")
    for _ in range(3):
        assert api_post(client, b"not an image").status_code == 400  # refused requests count too
    response = api_post(client, b"not an image")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0 and "throttled" in response.json()["detail"]
    # A forged X-Forwarded-For is not a new client (DJANGO_NUM_PROXIES=0: REMOTE_ADDR counts).
    assert client.post(API, {"image": SimpleUploadedFile("a.jpg", b"x")}, HTTP_X_FORWARDED_FOR="10.9.8.7").status_code == 429
    # Another address has its own budget.
    assert client.post(API, {"image": SimpleUploadedFile("a.jpg", b"x")}, REMOTE_ADDR="10.1.1.1").status_code == 400


def test_a_throttled_body_is_never_read(client, rates, monkeypatch):
    rates(image_search="1/min")
    api_post(client, b"not an image")
    monkeypatch.setattr(PhotoUploadHandler, "new_file", lambda *a, **k: (_ for _ in ()).throw(AssertionError("parsed")))
    assert api_post(client, make_image_bytes()).status_code == 429


def test_similar_items_are_rate_limited(client, rates):
    from tests.factories import ProductFactory

    rates(similar="2/min")
    product = ProductFactory()
    url = f"/api/products/{product.id}/similar"
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 429]


def test_the_storefront_upload_is_rate_limited_with_a_friendly_page(client, rates):
    rates(shop_the_look="2/min")
    for _ in range(2):  # no photo: refused by the form, and still counted
        assert client.post(PAGE, {**EMPTY_FORM}).status_code == 200
    response = page_post(client, make_image_bytes())
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    body = response.content.decode()
    assert "You have searched with a lot of photos in a short time. Please try again in" in body
    assert 'name="image"' in body
    assert client.get(PAGE).status_code == 200  # only searches count, not the page itself


def test_rates_can_be_switched_off(client, rates):
    rates(image_search=None, shop_the_look=None)
    for _ in range(5):
        assert api_post(client, b"nope").status_code == 400
        assert client.post(PAGE, {**EMPTY_FORM}).status_code == 200


def test_the_limits_fail_open_when_the_cache_is_down(client, rates, monkeypatch):
    rates(image_search="1/min", shop_the_look="1/min")

    def down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(cache, "get", down)
    monkeypatch.setattr(cache, "set", down)
    for _ in range(3):
        assert api_post(client, b"nope").status_code == 400
        assert client.post(PAGE, {**EMPTY_FORM}).status_code == 200


def test_a_throttled_or_refused_storefront_post_still_needs_no_token_to_be_refused():
    """The 429/413 pages are rendered before the CSRF check (nothing is done); a search still needs the token."""
    client = Client(enforce_csrf_checks=True)
    assert page_post(client, make_image_bytes()).status_code == 403

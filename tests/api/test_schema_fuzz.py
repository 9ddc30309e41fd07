"""Every operation of the public API, driven by its own OpenAPI schema (schemathesis).

The schema is read from the running Django application (``/api/schema/`` through its WSGI
handler, as a client would see it), and for each operation schemathesis generates requests,
valid and invalid, anonymous and as staff, and checks the answers: never a 5xx, and every
status code, content type and body as the schema documents them (schemathesis' default
checks). Bounded and seeded so that ``make test`` stays fast and repeatable;
``make fuzz`` runs the same tests with more examples and a fresh seed
(``FUZZ_EXAMPLES``, ``FUZZ_SEED``).

Photo search gets real pictures most of the time (the catalogue's own, a PNG, a picture
nobody sells), not only the random bytes the schema's ``format: binary`` allows, so that the
search itself is exercised and not only the "not an image" answer.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image

from tests.factories import make_image_bytes
from tests.visualsearch.test_selectors import CATALOGUE, IMAGE_SIZE, side_by_side
from tests.visualsearch.test_selectors import catalogue, shared_catalogue  # noqa: F401 (fixtures)
from visualsearch.duplicates.models import DuplicateFlag

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# 25 examples per operation and client: about a minute on 2 busy cores for the whole module.
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEARCH_EXAMPLES = max(1, FUZZ_EXAMPLES * 2 // 5)
FUZZ_SEED = int(os.environ.get("FUZZ_SEED", "15"))
STAFF_USER, STAFF_PASSWORD = "fuzz-staff", "fuzz-staff-pw"

# Rules of the data that a schema cannot state, so that a schema-valid request may get the
# documented 400: `keep` must be one of the flag's two products; a photo search needs bytes
# that decode as an image (the schema can only say "binary"), all four of x, y, w, h and a
# box inside the photo, min_price <= max_price, and slugs that name a category or merchant.
# Everything else about these operations (no 5xx, status codes, bodies, content types,
# invalid data refused) is checked as usual.
DATA_RULES_400 = {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "403", "404", "409", "429"]}}


def fuzz_schema(**auth):
    config = schemathesis.Config.from_dict(
        {
            "seed": FUZZ_SEED,
            "generation": {"max-examples": FUZZ_EXAMPLES},
            "operations": [
                {"include-path": "/api/duplicates/{id}/confirm", "checks": DATA_RULES_400},
                # Each photo search is a CNN forward pass or several (garments): fewer of them.
                # Invalid data is still sent and must never fail the server, but its refusal is
                # not required: multipart/form-data cannot carry most of what the fuzzer makes
                # invalid (an empty array or an empty string arrives as no field at all, a number
                # as the string a string field reads), so the server sees a valid request
                # (`make fuzz` seeds 1, 2 and 4, 300 examples). What a form can carry wrong —
                # a field twice, a boolean as 1 — is refused
                # (visualsearch.serializers.FormValuesSerializer; tests/visualsearch/test_api.py).
                {"include-path": "/api/search/image", "checks": {**DATA_RULES_400, "negative_data_rejection": {"enabled": False}},
                 "generation": {"max-examples": SEARCH_EXAMPLES}},
            ],
            **auth,
        }
    )
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application(), config=config)


anonymous_schema = fuzz_schema()
# Staff sign in with HTTP Basic (session authentication needs a CSRF token per request).
staff_schema = fuzz_schema(auth={"basic": {"username": STAFF_USER, "password": STAFF_PASSWORD}})


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 48), colour).save(buffer, format="PNG")
    return buffer.getvalue()


_catalogue_pictures = [make_image_bytes(colour=colour, pattern=pattern, size=IMAGE_SIZE) for *_, colour, pattern in CATALOGUE.values()]
PHOTOS = [
    *_catalogue_pictures[:4],
    side_by_side(_catalogue_pictures[0], _catalogue_pictures[6]),  # an outfit: two garments
    _png((90, 160, 90)),
    make_image_bytes(colour=(10, 200, 200), pattern=3, size=(300, 200), fmt="WEBP"),  # nobody sells it
]


# Slugs that exist: a schema-valid slug that names no category is a documented 400, and
# would leave the search itself untested.
_known_slugs: dict[str, list[str]] = {"category": [], "merchant": []}
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")


def map_body(ctx, body):
    """Three times in four a real photo in place of the generated bytes, and known slugs
    in place of valid random ones (the draw decides, so the choice is as repeatable as the
    rest of the example)."""
    if ctx.operation is None or ctx.operation.path != "/api/search/image" or not isinstance(body, dict):
        return body
    body = dict(body)
    image = body.get("image")
    if isinstance(image, (bytes, str)) and len(image) % 4 != 3:
        body["image"] = PHOTOS[len(image) % len(PHOTOS)]
    for name, slugs in _known_slugs.items():
        value = body.get(name)
        if slugs and isinstance(value, str) and SLUG.match(value):
            body[name] = slugs[len(value) % len(slugs)]
    return body


# Real ids now and then, so that "similar", "confirm" and "dismiss" answer more than 404.
_known_ids: dict[str, list[int]] = {"product_id": [], "id": []}


def flatmap_path_parameters(ctx, path_parameters):
    for name, ids in _known_ids.items():
        if ids and name in (path_parameters or {}) and isinstance(path_parameters[name], int):
            return st.one_of(st.just(path_parameters), st.sampled_from(ids).map(lambda i, n=name: {**path_parameters, n: i}))
    return st.just(path_parameters)


for _schema in (anonymous_schema, staff_schema):
    _schema.hook(map_body)
    _schema.hook(flatmap_path_parameters)


@pytest.fixture
def api_data(catalogue) -> Iterator[None]:  # noqa: F811 (fixture)
    """The embedded test catalogue, three duplicate flags to act on, a staff account; the
    WSGI handler must not close the test's connection at the end of each request (Django's
    test client disconnects the same signal)."""
    products = list(catalogue.products.values())
    flags = [
        DuplicateFlag.objects.create(product_a=a, product_b=b, kind="near", score=0.9, cosine=0.95, hash_distance=20)
        for a, b in zip(products[0:6:2], products[1:6:2])
    ]
    get_user_model().objects.create_user(STAFF_USER, password=STAFF_PASSWORD, is_staff=True)
    _known_ids["product_id"] = [p.id for p in products]
    _known_ids["id"] = [f.id for f in flags]
    _known_slugs["category"] = [c.slug for c in catalogue.categories.values()]
    _known_slugs["merchant"] = [m.slug for m in catalogue.merchants.values()]
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
        for known in (*_known_ids.values(), *_known_slugs.values()):
            known.clear()


# The fixture's data is shared by every example on purpose (a confirmed flag stays confirmed:
# the next confirm must answer 409); answers are never timed (a busy CI machine).
FUZZ_SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


@anonymous_schema.parametrize()
@FUZZ_SETTINGS
def test_anonymous(case, api_data):
    case.call_and_validate()


@staff_schema.parametrize()
@FUZZ_SETTINGS
def test_staff(case, api_data):
    case.call_and_validate()

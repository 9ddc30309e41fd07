"""The queue over REST for retailers' tooling."""

import pytest
from rest_framework.test import APIClient

from visualsearch.duplicates.models import DuplicateFlag, DuplicateFlagAction

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(staff):
    client = APIClient()
    client.force_authenticate(staff)
    return client


def test_non_staff_are_refused(shopper, embedded):
    client = APIClient()
    assert client.get("/api/duplicates/").status_code in (401, 403)
    client.force_authenticate(shopper)
    assert client.get("/api/duplicates/").status_code == 403
    flag = DuplicateFlag.objects.first()
    assert client.post(f"/api/duplicates/{flag.pk}/confirm").status_code == 403


def test_list_is_paginated_with_both_products_kind_score_and_evidence(api, embedded):
    response = api.get("/api/duplicates/", {"status": "open"})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3 and set(body) >= {"next", "previous", "results"}
    item = body["results"][0]
    assert item["kind"] == "exact" and item["score"] == 1.0 and item["status"] == "open"
    assert {"id", "title", "merchant", "price"} <= set(item["product_a"]) and item["product_a"]["id"] < item["product_b"]["id"]
    assert item["evidence"]["identical_bytes"] is True and item["evidence"]["hash_distance"] == 0
    assert api.get("/api/duplicates/", {"kind": "near"}).json()["count"] == 2
    assert api.get("/api/duplicates/", {"status": "dismissed"}).json()["count"] == 0


def test_a_filter_sent_twice_is_refused_and_an_empty_one_means_any(api, embedded):
    response = api.get("/api/duplicates/?kind=near&kind=exact")
    assert response.status_code == 400 and response.json() == {"kind": ["Send one value, not 2."]}
    assert api.get("/api/duplicates/", {"kind": "", "status": ""}).json()["count"] == 3  # a form's "any"


def test_an_empty_or_invalid_page_is_refused_not_read_as_the_first(api, embedded):
    # DRF alone answers ?page= with page 1; every invalid page is a 404 ("Invalid page.").
    for page in ("", " ", "abc", "99"):
        response = api.get("/api/duplicates/", {"page": page})
        assert response.status_code == 404 and "Invalid page" in response.json()["detail"], page
    assert api.get("/api/duplicates/", {"page": "1"}).status_code == 200


def test_confirm_dismiss_conflict_and_unknown(api, staff, embedded):
    products, _ = embedded
    exact = DuplicateFlag.objects.get(kind="exact")
    response = api.post(f"/api/duplicates/{exact.pk}/confirm", {"keep": products["exact"].id}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "confirmed" and response.json()["hidden_product"] == products["original"].id
    assert api.post(f"/api/duplicates/{exact.pk}/dismiss").status_code == 409
    near = DuplicateFlag.objects.filter(kind="near").first()
    assert api.post(f"/api/duplicates/{near.pk}/confirm", {"keep": 42}, format="json").status_code == 400
    assert api.post(f"/api/duplicates/{near.pk}/dismiss").json()["status"] == "dismissed"
    assert api.post("/api/duplicates/99999999/dismiss").status_code == 404
    assert set(DuplicateFlagAction.objects.values_list("details__via", flat=True)) == {"api"}
    assert DuplicateFlagAction.objects.filter(actor=staff).count() == 2


def test_documented_in_the_openapi_schema(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    assert "/api/duplicates/" in schema["paths"]
    confirm = schema["paths"]["/api/duplicates/{id}/confirm"]["post"]
    assert {"200", "400", "404", "409"} <= set(confirm["responses"])

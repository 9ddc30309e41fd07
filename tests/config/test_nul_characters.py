"""Requests with a NUL character, which PostgreSQL cannot hold in text: refused (a wrong
sign-in, a 400 page), never a database error."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth import authenticate, get_user_model


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.mark.django_db
@pytest.mark.parametrize("username, password", [("st\x00aff", "pw"), ("staff", "p\x00w"), ("\x00", "")])
def test_http_basic_credentials_with_a_nul_character_are_refused(client, username, password):
    get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    response = client.get("/api/duplicates/", HTTP_AUTHORIZATION=_basic(username, password), HTTP_HOST="localhost")
    assert response.status_code == 403  # as for a wrong password: not signed in
    assert client.get("/api/duplicates/", HTTP_AUTHORIZATION=_basic("staff", "pw"), HTTP_HOST="localhost").status_code == 200


@pytest.mark.django_db
def test_the_backend_still_signs_in_the_right_credentials():
    user = get_user_model().objects.create_user("someone", password="secret")
    assert authenticate(username="someone", password="secret") == user
    assert authenticate(username="some\x00one", password="secret") is None
    assert authenticate(username="someone", password="wrong") is None


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["gender=a%00b", "status=%00", "a%00=1", "q=x&colour=%00"])
def test_a_nul_character_in_a_page_query_answers_400_not_a_database_error(admin_client, query):
    response = admin_client.get(f"/admin/shop/product/?{query}", HTTP_HOST="localhost")
    assert response.status_code == 400
    assert "couldn’t read that address" in response.content.decode()
    assert admin_client.get("/admin/shop/product/?gender=women", HTTP_HOST="localhost").status_code == 200

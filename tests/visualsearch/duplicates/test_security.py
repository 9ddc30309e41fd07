"""Issue 7: every merchandiser page and action is for staff, and every form needs its CSRF token.

tests/visualsearch/duplicates/test_views.py already covers the queue page for anonymous
visitors and shoppers, anonymous dismiss, and shoppers' confirm/bulk; this covers the rest
of the actions and CSRF (the page, the JSON actions and the REST API).
"""

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from visualsearch.duplicates.models import DuplicateFlag, DuplicateFlagAction

pytestmark = pytest.mark.django_db

ACTIONS = ["confirm", "dismiss", "skip", "reopen", "bulk"]


def action_url(action: str, flag: DuplicateFlag) -> str:
    return reverse("duplicates:bulk") if action == "bulk" else reverse(f"duplicates:{action}", args=[flag.pk])


def form_data(action: str, flag: DuplicateFlag) -> dict:
    return {"action": "dismiss", "flags": [flag.pk]} if action == "bulk" else {}


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_refuse_anonymous_visitors_and_shoppers(client, shopper, embedded, action):
    flag = DuplicateFlag.objects.first()
    response = client.post(action_url(action, flag), form_data(action, flag))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    client.force_login(shopper)
    assert client.post(action_url(action, flag), form_data(action, flag)).status_code == 403
    assert client.post(action_url(action, flag), form_data(action, flag), HTTP_ACCEPT="application/json").status_code == 403
    flag.refresh_from_db()
    assert flag.status == "open" and not DuplicateFlagAction.objects.exists()


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_need_the_csrf_token(staff, embedded, action):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    flag = DuplicateFlag.objects.first()
    assert client.post(action_url(action, flag), form_data(action, flag)).status_code == 403
    assert client.post(action_url(action, flag), form_data(action, flag), HTTP_ACCEPT="application/json").status_code == 403
    assert not DuplicateFlagAction.objects.exists()
    token = client.get(reverse("duplicates:queue")).context["csrf_token"]
    response = client.post(action_url(action, flag), {**form_data(action, flag), "csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302  # done (or politely refused, e.g. reopening an open flag), back to the queue


def test_the_api_refuses_anonymous_and_non_staff_actions(shopper, embedded):
    flag = DuplicateFlag.objects.first()
    client = APIClient()
    for path in (f"/api/duplicates/{flag.pk}/confirm", f"/api/duplicates/{flag.pk}/dismiss"):
        assert client.post(path).status_code in (401, 403)
    client.force_authenticate(shopper)
    assert client.post(f"/api/duplicates/{flag.pk}/dismiss").status_code == 403
    flag.refresh_from_db()
    assert flag.status == "open"


def test_the_api_with_a_session_needs_the_csrf_token(staff, embedded):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="merch", password="pw-merch-123")
    flag = DuplicateFlag.objects.first()
    assert client.get("/api/duplicates/").status_code == 200  # reading needs no token
    response = client.post(f"/api/duplicates/{flag.pk}/dismiss")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    flag.refresh_from_db()
    assert flag.status == "open"

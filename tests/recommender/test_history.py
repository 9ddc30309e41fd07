"""Viewing history: the session list of anonymous visitors, the rows of signed-in users
(bounded, pruned on write), and the merge of the one into the other on login."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.urls import reverse

from recommender import history
from recommender.models import ProductView
from recommender.selectors import history_viewed_ids
from recommender.services import history_merge_session, product_view_record, product_views_prune, product_views_store
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a long test password"


@pytest.fixture
def products():
    return [ProductFactory() for _ in range(history.MAX_REMEMBERED + 5)]


@pytest.fixture
def user():
    return get_user_model().objects.create_user(username="shopper", password=PASSWORD)


def test_the_session_keeps_the_last_views_once_each_oldest_first():
    session = {}
    for pid in (1, 2, 3, 2):
        history.session_view_add(session=session, product_id=pid)
    assert history.session_viewed_ids(session=session) == [1, 3, 2]
    for pid in range(100, 100 + history.MAX_REMEMBERED):
        history.session_view_add(session=session, product_id=pid)
    assert history.session_viewed_ids(session=session) == list(range(100, 100 + history.MAX_REMEMBERED))


def test_a_tampered_session_list_is_ignored_not_an_error():
    session = {history.SESSION_KEY: ["12", "x", None, 7, "-3"]}
    assert history.session_viewed_ids(session=session) == [12, 7]
    assert history.session_history_pop(session=session) == [12, 7] and history.SESSION_KEY not in session


def test_a_signed_in_users_views_are_rows_and_a_re_view_moves_to_the_end(user, products):
    a, b, c = products[:3]
    for product in (a, b, c, a):
        product_view_record(user=user, session={}, product_id=product.id)
    assert history_viewed_ids(user=user, session={}) == [b.id, c.id, a.id]
    assert ProductView.objects.filter(user=user).count() == 3


def test_anonymous_views_stay_in_the_session(products):
    session = {}
    product_view_record(user=AnonymousUser(), session=session, product_id=products[0].id)
    assert history_viewed_ids(user=AnonymousUser(), session=session) == [products[0].id]
    assert not ProductView.objects.exists()


def test_history_is_bounded_and_pruned_on_write(user, products, django_assert_num_queries):
    for product in products:
        product_view_record(user=user, session={}, product_id=product.id)
    kept = [p.id for p in products[-history.MAX_REMEMBERED :]]
    assert ProductView.objects.filter(user=user).count() == history.MAX_REMEMBERED
    assert history_viewed_ids(user=user, session={}) == kept
    # One view: savepoint, upsert, prune, release; whatever the history's length.
    with django_assert_num_queries(4):
        product_view_record(user=user, session={}, product_id=products[0].id)
    assert history_viewed_ids(user=user, session={}) == kept[1:] + [products[0].id]


def test_pruning_keeps_other_users_rows(user, products):
    other = get_user_model().objects.create_user(username="other", password=PASSWORD)
    product_views_store(user_id=other.pk, product_ids=[p.id for p in products[:5]])
    product_views_store(user_id=user.pk, product_ids=[p.id for p in products[:5]])
    assert product_views_prune(user_id=user.pk, keep=2) == 3
    assert ProductView.objects.filter(user=other).count() == 5


def test_merge_puts_the_session_after_the_stored_history_and_empties_the_session(user, products):
    a, b, c, d = products[:4]
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    product_views_store(user_id=user.pk, product_ids=[a.id, b.id], now=long_ago)
    session = {history.SESSION_KEY: [c.id, a.id, d.id]}
    assert history_merge_session(user=user, session=session) == 3
    assert history_viewed_ids(user=user, session=session) == [b.id, c.id, a.id, d.id]
    assert history.SESSION_KEY not in session


def test_merge_skips_products_deleted_since(user, products):
    gone = products[1]
    gone_id = gone.id
    gone.delete()
    assert history_merge_session(user=user, session={history.SESSION_KEY: [products[0].id, gone_id]}) == 2
    assert history_viewed_ids(user=user, session={}) == [products[0].id]


def test_logging_in_through_the_site_merges_what_was_viewed_before(client, user, products):
    for product in products[:3]:
        assert client.get(product.get_absolute_url()).status_code == 200
    # The site's sign-in form today is the admin's (staff only); any login() sends the signal.
    user.is_staff = True
    user.save()
    response = client.post(reverse("admin:login"), {"username": "shopper", "password": PASSWORD, "next": "/"})
    assert response.status_code == 302, "not signed in"
    assert history_viewed_ids(user=user, session={}) == [p.id for p in products[:3]]
    # A later visit from another device (a new session) finds the history.
    other_device = client.__class__()
    other_device.force_login(user)
    recently_viewed = other_device.get(reverse("storefront:home")).context["recently_viewed"]
    assert [p.id for p in recently_viewed] == [p.id for p in products[2::-1]]


def test_logging_out_leaves_an_empty_anonymous_history(client, user, products):
    client.force_login(user)
    client.get(products[0].get_absolute_url())
    client.logout()
    assert client.get(reverse("storefront:home")).context["recently_viewed"] == []
    client.force_login(user)
    assert [p.id for p in client.get(reverse("storefront:home")).context["recently_viewed"]] == [products[0].id]


def test_signing_in_as_someone_else_does_not_hand_over_the_history(client, user, products):
    other = get_user_model().objects.create_user(username="other", password=PASSWORD)
    client.force_login(user)
    client.get(products[0].get_absolute_url())
    client.force_login(other)  # the session is flushed: nothing of the first user's comes along
    assert not ProductView.objects.filter(user=other).exists()


def test_the_session_store_round_trip_keeps_the_list(products):
    store = SessionStore()
    history.session_view_add(session=store, product_id=products[0].id)
    store.save()
    assert history.session_viewed_ids(session=SessionStore(session_key=store.session_key)) == [products[0].id]

""""Recommended for you" and "Recently viewed", over a catalogue whose vectors are made here
(``interests.py``), so that "near each interest" and "near the mean of the interests" are
known in advance."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from lab.evaluation.recommendations import recommended_mean_vector
from recommender.selectors import MAX_INTERESTS, RECENT_VIEWS_USED, products_recently_viewed, products_recommended
from shop.models import Product
from tests.factories import MerchantFactory, ProductFactory, make_image_bytes
from tests.recommender.interests import DIM, InterestCatalogue, build_interest_catalogue, unit
from visualsearch.selectors import product_vectors

pytestmark = pytest.mark.django_db


# Recommended for you -----------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_interests(django_db_setup, django_db_blocker) -> Iterator[InterestCatalogue]:
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_interest_catalogue()
        transaction.set_rollback(True)


@pytest.fixture
def interests(shared_interests, db) -> InterestCatalogue:
    return shared_interests


def ids(catalogue: InterestCatalogue, *keys: str) -> list[int]:
    return [catalogue.products[key].id for key in keys]


def test_the_old_mean_vector_loses_every_interest_and_the_new_one_keeps_them(interests):
    """The issue's session: flats, then a polo, then a bag."""
    viewed = ids(interests, "flat0", "polo0", "handbag0")
    before = recommended_mean_vector(viewed_ids=viewed, k=12)
    assert set(interests.category_keys(before[:8])) == {"kurtas"}  # near the mean: near none of the three
    after = products_recommended(viewed_ids=viewed, k=12)
    categories = interests.category_keys(after)
    assert len(after) == 12 and "kurtas" not in categories[:9]
    assert {"flats", "tshirts", "handbags"} <= set(categories[:3])  # each interest in the first places
    # The bag was viewed last: it leads, and the most recent interest gets the most places.
    assert categories[0] == "handbags"
    assert categories.count("handbags") >= categories.count("tshirts") >= categories.count("flats") >= 3


def test_interests_are_interleaved_not_in_runs(interests):
    after = products_recommended(viewed_ids=ids(interests, "flat0", "polo0", "handbag0"), k=9)
    categories = interests.category_keys(after)
    assert all(a != b for a, b in zip(categories, categories[1:])), categories


def test_recommended_leaves_out_what_was_viewed_and_hidden_products(interests):
    viewed = ids(interests, "flat0", "flat1", "polo0")
    Product.objects.filter(id=interests.products["flat2"].id).update(status=Product.Status.HIDDEN)
    found = {m.product.id for m in products_recommended(viewed_ids=viewed, k=30)}
    assert found and not found & set(viewed)
    assert interests.products["flat2"].id not in found
    also_excluded = interests.products["polo1"].id
    assert also_excluded not in {m.product.id for m in products_recommended(viewed_ids=viewed, k=30, exclude_product_ids={also_excluded})}


def test_repeated_views_weigh_more_but_never_crowd_out_an_interest(interests):
    viewed = ids(interests, "polo0", "polo1", "polo2", "polo3", "flat0")
    matches = products_recommended(viewed_ids=viewed, k=12)
    following = [m.interest_category_id for m in matches]
    polos, flats = interests.categories["tshirts"].id, interests.categories["flats"].id
    # Four polos against one later flat: the polos' interest takes more places (the two polos
    # left, then what looks nearest to them); the flat's still gets its share.
    assert following.count(polos) > following.count(flats) >= 3
    assert set(interests.category_keys(matches)) >= {"tshirts", "flats"}


def test_old_views_fade_and_at_most_max_interests_are_kept(interests):
    old = ids(interests, "watch0")
    recent = ids(interests, "sneaker0", "flat0", "polo0", "handbag0", "messenger0")  # five categories
    viewed = old + ids(interests, *(f"kurta{i}" for i in range(RECENT_VIEWS_USED - len(recent)))) + recent
    matches = products_recommended(viewed_ids=viewed, k=12)
    assert len({m.interest_category_id for m in matches}) == MAX_INTERESTS
    # The watch is more than RECENT_VIEWS_USED views back; the sneaker is the lightest of the five.
    followed = {m.interest_category_id for m in matches}
    assert interests.categories["watches"].id not in followed and interests.categories["sneakers"].id not in followed


def test_listings_of_one_photo_fold_into_one_card(interests):
    photo = make_image_bytes(colour=(12, 34, 56), pattern=5)
    vector = interests.centres["handbags"] + 0.1 * unit(interests.rng.normal(size=DIM))  # the nearest to the bags
    first = interests.add("bag_listing", category="handbags", data=photo, vector=vector)
    # The same bytes, so the same vector (the CNN is deterministic), from another merchant.
    second = interests.add("bag_relisting", category="handbags", data=photo, vector=vector, merchant=MerchantFactory(name="Southwind"))
    matches = products_recommended(viewed_ids=ids(interests, "handbag0"), k=12)
    shown = [m.product.id for m in matches]
    assert (first.id in shown) != (second.id in shown)  # one card for the two listings
    card = next(m for m in matches if m.product.id in {first.id, second.id})
    assert [p.id for p in card.also] == [({first.id, second.id} - {card.product.id}).pop()]


def _vector_of(product: Product) -> np.ndarray:
    return product_vectors(product_ids=[product.id])[product.id]


def test_near_identical_products_are_not_both_shown(interests):
    twin_of = interests.products["polo2"]
    base = _vector_of(twin_of)
    twin = interests.add("polo_twin", category="tshirts", vector=unit(base + 0.05 * unit(interests.rng.normal(size=base.shape[0]))))
    assert float(unit(base) @ unit(_vector_of(twin))) > 0.99
    shown = {m.product.id for m in products_recommended(viewed_ids=ids(interests, "polo0"), k=12)}
    assert len({twin.id, twin_of.id} & shown) == 1


def test_a_near_identical_copy_of_a_viewed_product_is_left_out(interests):
    viewed = interests.products["flat3"]
    base = _vector_of(viewed)
    twin = interests.add("flat_twin", category="flats", vector=unit(base + 0.05 * unit(interests.rng.normal(size=base.shape[0]))))
    shown = {m.product.id for m in products_recommended(viewed_ids=[viewed.id], k=12)}
    assert shown and twin.id not in shown


def test_recommended_after_one_view_is_that_products_neighbourhood(interests):
    polo = interests.products["polo0"]
    matches = products_recommended(viewed_ids=[polo.id], k=5)
    assert set(interests.category_keys(matches)) == {"tshirts"}
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)


def test_recommended_without_views_or_vectors_is_empty(interests):
    assert products_recommended(viewed_ids=[]) == []
    assert products_recommended(viewed_ids=[987654]) == []
    unembedded = ProductFactory(category=interests.categories["flats"])
    assert products_recommended(viewed_ids=[unembedded.id]) == []


@pytest.mark.parametrize("history_length", [1, 4, 30])
@pytest.mark.parametrize("k", [3, 12, 40])
def test_recommended_query_count_is_bounded_whatever_the_history_or_k(interests, history_length, k):
    # Five categories in turn: the last ten views hold five interests, of which four are kept.
    keys = [f"{prefix}{i}" for i in range(6) for prefix in ("flat", "polo", "handbag", "sneaker", "watch") if f"{prefix}{i}" in interests.products]
    viewed = ids(interests, *keys[:history_length])
    with CaptureQueriesContext(connection) as captured:
        products_recommended(viewed_ids=viewed, k=k)
    # the active model (read every time in tests), views (2), a search per interest (savepoint,
    # query, release; at most MAX_INTERESTS), photo files and near-identical pairs (2), the cards (2).
    assert len(captured) <= 1 + 2 + 3 * MAX_INTERESTS + 2 + 2


# Recently viewed ---------------------------------------------------------------------


def test_recently_viewed_is_newest_first_without_hidden_or_excluded_ones(interests):
    viewed = ids(interests, "flat0", "polo0", "handbag0", "flat0", "watch0")
    Product.objects.filter(id=interests.products["polo0"].id).update(status=Product.Status.HIDDEN)
    products = products_recently_viewed(viewed_ids=viewed)
    assert interests.keys(products) == ["watch0", "flat0", "handbag0"]
    assert interests.keys(products_recently_viewed(viewed_ids=viewed, k=1)) == ["watch0"]
    excluded = {interests.products["watch0"].id}
    assert interests.keys(products_recently_viewed(viewed_ids=viewed, exclude_product_ids=excluded)) == ["flat0", "handbag0"]
    assert products_recently_viewed(viewed_ids=[]) == []


def test_recently_viewed_takes_two_queries(interests, django_assert_num_queries):
    viewed = ids(interests, *list(interests.products)[:30])
    with django_assert_num_queries(2):
        assert len(products_recently_viewed(viewed_ids=viewed)) == 12

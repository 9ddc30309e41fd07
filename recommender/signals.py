"""Wiring (connected in ``RecommenderConfig.ready``): a visitor who signs in keeps what they
viewed before; a product whose photo was embedded again gets its "Complete the look" and its
similar strip refreshed (and the strips it now belongs in), and the cached similar strips are
dropped; a new active model gets its similar strips rebuilt."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.dispatch import receiver

from recommender.services import history_merge_session, similar_cache_forget
from recommender.tasks import looks_schedule, similar_strips_catch_up_schedule, similar_strips_schedule
from visualsearch.events import active_model_changed, images_embedded


@receiver(user_logged_in, dispatch_uid="recommender_history_merge_on_login")
def history_merge_on_login(sender, request, user, **kwargs) -> None:
    # ``login()`` keeps the session's data (it only cycles the key) when an anonymous visitor
    # signs in, and flushes it when another user was signed in: nothing leaks between users.
    session = getattr(request, "session", None) if request is not None else None
    if session is not None:
        history_merge_session(user=user, session=session)


@receiver(images_embedded, dispatch_uid="recommender_looks_after_embedding")
def looks_after_embedding(sender, *, product_ids, **kwargs) -> None:
    looks_schedule(product_ids=product_ids)


@receiver(images_embedded, dispatch_uid="recommender_similar_after_embedding")
def similar_after_embedding(sender, *, product_ids, **kwargs) -> None:
    similar_strips_schedule(product_ids=product_ids)
    # After the commit: a strip computed before it and cached later is dropped too. Robust:
    # a cache that does not answer leaves the strips to their TTL; it does not fail the task.
    transaction.on_commit(similar_cache_forget, robust=True)


@receiver(active_model_changed, dispatch_uid="recommender_similar_after_promotion")
def similar_after_promotion(sender, **kwargs) -> None:
    # Strips belong to one model: the new active model's are rebuilt at once, not by the sweep's 1,000 per 5 minutes.
    similar_strips_catch_up_schedule()

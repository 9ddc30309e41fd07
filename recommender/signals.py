"""Wiring: a visitor who signs in keeps what they viewed before (connected in ``RecommenderConfig.ready``)."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from recommender.services import history_merge_session


@receiver(user_logged_in, dispatch_uid="recommender_history_merge_on_login")
def history_merge_on_login(sender, request, user, **kwargs) -> None:
    # ``login()`` keeps the session's data (it only cycles the key) when an anonymous visitor
    # signs in, and flushes it when another user was signed in: nothing leaks between users.
    session = getattr(request, "session", None) if request is not None else None
    if session is not None:
        history_merge_session(user=user, session=session)

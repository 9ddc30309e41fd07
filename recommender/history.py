"""Recently viewed products of an anonymous visitor, kept in their session (no login needed).

Signed-in shoppers' history is ``recommender.models.ProductView`` rows instead; the session's
list is merged into them on login (``recommender.services.history_merge_session``). Both keep
the ``MAX_REMEMBERED`` most recent products, oldest first.
"""

from __future__ import annotations

SESSION_KEY = "recently_viewed"
# How many products a visitor's history keeps (session list or rows per user): twice what
# "Recommended for you" reads (``RECENT_VIEWS_USED``) and more than the strip shows.
MAX_REMEMBERED = 30


def session_viewed_ids(*, session) -> list[int]:
    """Product ids viewed in this session, oldest first; anything that is not an id is ignored."""
    return [int(pid) for pid in session.get(SESSION_KEY, []) if str(pid).isdigit()]


def session_view_add(*, session, product_id: int) -> None:
    ids = [pid for pid in session_viewed_ids(session=session) if pid != product_id]
    ids.append(product_id)
    session[SESSION_KEY] = ids[-MAX_REMEMBERED:]


def session_history_pop(*, session) -> list[int]:
    """The session's history (oldest first), removed from the session."""
    ids = session_viewed_ids(session=session)
    session.pop(SESSION_KEY, None)
    return ids

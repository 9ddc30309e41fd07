"""Recently viewed products, kept in the visitor's session (no login needed)."""

from __future__ import annotations

SESSION_KEY = "recently_viewed"
MAX_REMEMBERED = 30


def viewed_products(session) -> list[int]:
    return [int(pid) for pid in session.get(SESSION_KEY, []) if str(pid).isdigit()]


def remember_view(session, *, product_id: int) -> None:
    ids = [pid for pid in viewed_products(session) if pid != product_id]
    ids.append(product_id)
    session[SESSION_KEY] = ids[-MAX_REMEMBERED:]

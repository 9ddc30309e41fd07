"""Rate limits for the photo searches (API and storefront) and the public similar-items API.

Rates are DRF rates from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (env
``VISUALSEARCH_RATE_*``, "off" disables one), counted per signed-in user or else per client
address in Django's default cache (Redis when ``REDIS_URL`` is set). Two details:

* rates are read from the settings on every request, not frozen when the class is
  imported (DRF's ``SimpleRateThrottle.THROTTLE_RATES`` is), so they can be changed per
  deployment and per test;
* the limiter fails open: if the cache is unreachable (Redis down), requests are served
  and a warning is logged; a search must not turn into a 500 because a counter is missing.
"""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

logger = logging.getLogger(__name__)


class _SettingsRateMixin:
    scope: str | None

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request: Any, view: Any) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[misc]
        except Exception as exc:  # the cache is down: serve the request, say so in the log
            logger.warning("rate limit %r not applied: the cache is unavailable (%s)", self.scope, exc)
            return True


class ScopedThrottle(_SettingsRateMixin, ScopedRateThrottle):
    """DRF's per-view scope (``throttle_scope`` on the view), with rates read per request."""


class ShopTheLookThrottle(_SettingsRateMixin, SimpleRateThrottle):
    """The storefront's photo search form: a plain Django view, so used through :func:`shop_the_look_allowed`."""

    scope = "shop_the_look"

    def __init__(self, scope: str | None = None) -> None:  # SimpleRateThrottle reads the rate in __init__; do it per request
        self.scope = scope or self.scope
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def get_cache_key(self, request: Any, view: Any) -> str:
        user = getattr(request, "user", None)
        ident = f"user-{user.pk}" if user is not None and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def look_refine_allowed(request: Any) -> bool:
    """Whether this client may re-run one more box or filter on a kept search (each box is
    an embedding: cheaper than an upload, not free)."""
    return ShopTheLookThrottle("look_refine").allow_request(request, None)


def shop_the_look_allowed(request: Any) -> tuple[bool, int | None]:
    """(allowed, seconds to wait) for one more photo search from this client."""
    throttle = ShopTheLookThrottle()
    if throttle.allow_request(request, None):
        return True, None
    wait = throttle.wait()
    return False, max(1, int(wait + 0.999)) if wait is not None else None

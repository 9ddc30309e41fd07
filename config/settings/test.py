"""The test suite: the same PostgreSQL + pgvector as the demo, fast hashing, no manifest."""

import os
from pathlib import Path

from .base import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Worker processes started by integration tests are pointed at the test's media folder.
# (Each test also gets its own folder through tests/conftest.py.)
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or VAR_DIR / "test-media")  # noqa: F405
# whitenoise warns about a missing STATIC_ROOT on every request; tests never collect static.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
# Concurrent test runs on one machine (several checkouts, or a developer beside CI) share the
# embedded server, so each may name its own test database.
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DB_NAME", "test_vitrine")}  # noqa: F405
# Tests never share a cache (REDIS_URL may point at a Redis the worker tests use), and are
# never throttled by accident: the throttle tests set their own rates (tests/conftest.py
# also clears the cache around every test).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {  # noqa: F405
    scope: "100000/min" for scope in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]  # noqa: F405
}
# Tests switch the active model (settings and registry) freely: never serve a cached one.
VISUALSEARCH_ACTIVE_MODEL_TTL = 0
VISUALSEARCH_SHELVES_TTL = 0  # tests build catalogues between searches
VISUALSEARCH_INDEX_ROWS_PER_PRODUCT = 3.0  # likewise (tests/visualsearch/test_search_headroom.py estimates it)
VISUALSEARCH_EXACT_SEARCH_MAX_PRODUCTS = 1000  # likewise (tests/visualsearch/test_search_exact.py estimates it)
RECOMMENDER_SIMILAR_TTL = 0  # likewise; tests/recommender/test_similar_cache.py turns it on
# The suite embeds with torch: an ONNX export costs seconds per model and the tests train
# many tiny ones. tests/visualsearch/embedding/test_onnx_backend.py tests ONNX Runtime
# (tests/conftest.py sets the same through the environment, for code that resets the
# configuration and for the processes tests start).
VISUALSEARCH_BACKEND = os.environ.get("VISUALSEARCH_TEST_BACKEND", "torch")
# Unit tests embed with the ImageNet model (the 1,280-d vectors and scores they assert on);
# the shipped default is tested on its own (tests/visualsearch/embedding/test_shipped.py,
# tests/e2e/test_photo_search_quality.py).
VISUALSEARCH_MODEL = os.environ.get("VISUALSEARCH_TEST_MODEL", "efficientnet_lite0")

from pathlib import Path

import pytest

from lab.datasets import CATALOG_DIR, CONSUMER_DIR
from tests.visualsearch.embedding.helpers import SUITE_BACKEND


@pytest.fixture
def shared_catalog() -> Path:
    if not (CATALOG_DIR / "labels.csv").exists():
        pytest.skip(f"shared catalogue not found at {CATALOG_DIR} (../shared/data beside the repo)")
    return CATALOG_DIR


@pytest.fixture
def shared_consumer_photos() -> Path:
    if not (CONSUMER_DIR / "labels.csv").exists():
        pytest.skip(f"shared consumer photos not found at {CONSUMER_DIR} (../shared/data beside the repo)")
    return CONSUMER_DIR


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Each test writes images into its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters (and anything else cached) never leak from one test into another."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _suite_backend(monkeypatch):
    """Code that resets the embedding configuration (and processes the tests start) embeds
    with the suite's backend, torch unless VISUALSEARCH_TEST_BACKEND says otherwise."""
    monkeypatch.setenv("VISUALSEARCH_BACKEND", SUITE_BACKEND)

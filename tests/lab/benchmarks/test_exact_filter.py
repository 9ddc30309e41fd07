"""The filtered-search benchmark runs end to end on a small scratch table and cleans up."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from lab.benchmarks.exact_filter import COMPARED, run
from tests.factories import ProductImageFactory
from visualsearch.services import embeddings_store

pytestmark = pytest.mark.django_db(transaction=True)


def test_walked_and_exact_searches_are_measured_and_the_table_dropped(settings):
    settings.VISUALSEARCH_MODEL = "efficientnet_lite0"
    images = [ProductImageFactory() for _ in range(12)]
    vectors = np.random.default_rng(1).standard_normal((12, 1280)).astype(np.float32)
    embeddings_store(images=images, vectors=vectors / np.linalg.norm(vectors, axis=1, keepdims=True), model_name="efficientnet_lite0")
    results = run(rows=3000)
    assert [r["category_rows"] for r in results] == [100, 300, 1000, 1600]  # of category_sizes(3000): what fits
    for row in results:
        assert row["walked_p50_ms"] > 0 and row["exact_p50_ms"] > 0
        assert 0.0 <= row["walked_found"] <= 1.0
    # The 100-row category: the exact search is the reference, and the walk finds most of its top.
    assert results[0]["walked_found"] > 0.5 and COMPARED == 44
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench_exact_%%'")
        assert cursor.fetchone()[0] == 0


def test_the_command_refuses_a_catalogue_without_vectors(tmp_path):
    with pytest.raises(CommandError, match="make embed"):
        call_command("bench_exact_filter", rows=1000, out=tmp_path)

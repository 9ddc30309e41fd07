"""``manage.py load_test --quick`` against a real gunicorn on loopback (the CI smoke run)."""

import json

import pytest
from django.core.management import call_command

from tests.factories import ProductImageFactory
from visualsearch import indexing
from lab.benchmarks.mixed_load import mixed_requests

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_mixed_requests_follow_the_mix_and_are_labelled():
    make = mixed_requests(slugs=["a", "b"], listings=["/products/?sort=title"], photos=[b"\xff\xd8x"],
                          mix={"product": 0.5, "listing": 0.3, "search": 0.2}, seed=0, n=1000)
    requests = [make(i) for i in range(1000)]
    counts = {kind: sum(r.label == kind for r in requests) for kind in ("product", "listing", "search")}
    assert 430 < counts["product"] < 570 and 240 < counts["listing"] < 360 and 150 < counts["search"] < 250
    assert {r.path for r in requests if r.label == "product"} == {"/products/a/", "/products/b/"}
    assert all(r.method == "POST" and r.path == "/api/search/image" for r in requests if r.label == "search")
    assert [make(i) for i in range(50)] == requests[:50]  # seeded: the same run twice


def test_quick_load_test_serves_mixed_traffic_without_errors(transactional_db, tmp_path, settings):
    images = [ProductImageFactory(colour=(40 * i, 100, 220 - 30 * i)) for i in range(6)]
    indexing.images_embed(image_ids=[img.id for img in images])

    call_command("load_test", "--quick", "--seconds", "2", "--out", str(tmp_path))

    report = json.loads((tmp_path / "load_quick.json").read_text())
    level = report["levels"][0]
    assert level["clients"] == 2 and level["requests"] > 0 and level["errors"] == 0, level["statuses"]
    assert set(level["by_label"]) == {"product", "listing", "search"}
    assert report["sustained"]["throughput_rps"] > 0 and report["rate_limits"] == "off"
    assert "Sustained with zero errors" in (tmp_path / "load_quick.md").read_text()


def test_load_test_without_an_embedded_catalogue_says_so(db, tmp_path):
    call_command("load_test", "--quick", "--out", str(tmp_path))
    report = json.loads((tmp_path / "load_quick.json").read_text())
    assert "no embedded active products" in report["skipped"]

"""``manage.py load_test`` (Locust against a real gunicorn on the test database) and its report code."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from lab.benchmarks.load import climb_sentence, latency_climb, load_markdown, sustained_level, traffic_plan, traffic_targets
from tests.factories import ProductImageFactory
from visualsearch import indexing


def level(users, p50, *, errors=0, rps=10.0, requests=100):
    return {"users": users, "p50": p50, "p95": p50 * 2, "p99": p50 * 3, "errors": errors, "throughput_rps": rps,
            "requests": requests, "seconds": 30.0}


def test_latency_climbs_at_the_first_level_past_the_factor():
    levels = [level(8, 60.0), level(1, 20.0), level(4, 29.0), level(16, 200.0)]
    climb = latency_climb(levels=levels, factor=1.5)
    assert climb == {"factor": 1.5, "baseline_users": 1, "baseline_p50": 20.0, "users": 8, "p50": 60.0}
    assert "at **8 users**" in climb_sentence(climb) and "1-user p50 20 ms" in climb_sentence(climb)


def test_flat_latency_and_too_few_levels():
    flat = latency_climb(levels=[level(1, 20.0), level(4, 30.0)], factor=1.5)  # 30 is not > 1.5 x 20
    assert flat["users"] is None and "does not climb" in climb_sentence(flat)
    assert latency_climb(levels=[level(2, 20.0)]) is None
    no_requests = {**level(1, 20.0, requests=0), "p50": None}
    assert latency_climb(levels=[no_requests, level(4, 30.0)]) is None  # a level without requests has no p50
    assert "not measured" in climb_sentence(None)


def test_sustained_is_the_fastest_error_free_level():
    levels = [level(1, 20.0, rps=40.0), level(4, 80.0, rps=45.0), level(8, 160.0, rps=50.0, errors=2)]
    assert sustained_level(levels=levels)["users"] == 4
    assert sustained_level(levels=[level(1, 20.0, errors=1)]) is None


def test_the_markdown_has_both_tables_the_climb_and_the_failures():
    lv = {**level(1, 20.0), "by_kind": {"product": level(1, 18.0), "search": level(1, 40.0)}, "failures": [],
          "reports": {"html": "/x/load_u1.html"}}
    lv4 = {**level(4, 90.0, errors=1), "by_kind": {}, "reports": {"html": "/x/load_u4.html"},
           "failures": [{"kind": "search", "method": "POST", "error": "HTTP 502", "occurrences": 1}]}
    result = {
        "mode": "full", "command": "python manage.py load_test", "load_generator": "locust",
        "machine": {"date_utc": "2026-12-01 07:00 UTC", "cpu_count": 2, "cpu_model": "cpu", "load_average_1_5_15": [0.5, 0.5, 0.5]},
        "gunicorn_workers": 2, "torch_threads_per_worker": 1, "rate_limits": "off", "mix": {"product": 1},
        "catalogue": {"products_embedded": 10}, "photos": "generated", "seconds_per_level": 30.0,
        "levels": [lv, lv4],
    }
    result["climb"] = latency_climb(levels=result["levels"])
    result["sustained"] = sustained_level(levels=result["levels"])
    md = load_markdown(result)
    assert "| users | seconds | requests | errors | req/s | p50 (ms) | p95 (ms) | p99 (ms) |" in md
    assert "| 1 | search | 100 | 0 | 10.0 | 40 | 80 | 120 |" in md
    assert "Latency starts to climb at **4 users**" in md
    assert "Sustained with zero errors: **10.0 req/s** at 1 users" in md
    assert "* 4 users, search: HTTP 502 × 1" in md and "`load_u4.html`" in md


@pytest.mark.django_db
def test_traffic_targets_and_plan_name_embedded_products_and_listings():
    images = [ProductImageFactory(colour=(40 * i, 100, 220 - 30 * i)) for i in range(3)]
    indexing.images_embed(image_ids=[img.id for img in images])
    targets = traffic_targets(seed=0)
    assert sorted(targets["product_ids"]) == sorted(img.product_id for img in images)
    assert sorted(targets["slugs"]) == sorted(img.product.slug for img in images)
    assert len(targets["listings"]) == 200 and all(path.startswith("/products/?") for path in targets["listings"])
    assert sum("page=2" in path for path in targets["listings"]) == 40
    plan = traffic_plan(targets=targets, seed=3, photo_paths=[], mix={"product": 1})
    assert plan["seed"] == 3 and plan["mix"] == {"product": 1} and "api_mix" not in plan and plan["photos"] == []
    assert traffic_targets(seed=0) == targets  # seeded


@pytest.mark.integration
@pytest.mark.slow
def test_quick_load_test_runs_locust_against_gunicorn_without_errors(transactional_db, tmp_path):
    images = [ProductImageFactory(colour=(40 * i, 100, 220 - 30 * i)) for i in range(6)]
    indexing.images_embed(image_ids=[img.id for img in images])

    call_command("load_test", "--quick", "--seconds", "2", "--out", str(tmp_path))

    report = json.loads((tmp_path / "load_quick.json").read_text())
    (lv,) = report["levels"]
    assert lv["users"] == 2 and lv["requests"] > 0 and lv["errors"] == 0, lv["failures"]
    assert set(lv["by_kind"]) == {"product", "listing", "search"}
    assert all(row["requests"] > 0 and row["p50"] > 0 for row in lv["by_kind"].values())
    assert report["warmup"]["errors"] == 0 and report["rate_limits"] == "off"
    assert report["sustained"]["throughput_rps"] > 0 and report["climb"] is None  # one level: nothing to climb from
    assert "Sustained with zero errors" in (tmp_path / "load_quick.md").read_text()
    for name in ("load_quick_u2.html", "load_quick_u2_stats.csv", "load_quick_u2.json", "load_quick_plan.json"):
        assert (tmp_path / name).stat().st_size > 0


def test_load_test_without_an_embedded_catalogue_says_so(db, tmp_path):
    call_command("load_test", "--quick", "--out", str(tmp_path))
    report = json.loads((tmp_path / "load_quick.json").read_text())
    assert "no embedded active products" in report["skipped"]
    assert not list(tmp_path.glob("*.html"))  # neither gunicorn nor Locust was started


def test_load_test_refuses_unknown_kinds_and_unbounded_runs(db, tmp_path):
    with pytest.raises(CommandError, match="unknown kind 'checkout'"):
        call_command("load_test", "--mix", "product=1,checkout=1", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="bounded"):
        call_command("load_test", "--seconds", "601", "--out", str(tmp_path))


@pytest.mark.integration
@pytest.mark.slow
def test_bench_http_section_measures_the_endpoints_with_locust(transactional_db, tmp_path, settings):
    images = [ProductImageFactory(colour=(40 * i, 90, 200)) for i in range(4)]
    indexing.images_embed(image_ids=[img.id for img in images])
    settings.RECOMMENDER_SIMILAR_TTL = 60  # the bench then measures similar items again with the cache off

    call_command("bench", "--quick", "--only", "http", "--http-seconds", "2", "--http-clients", "2", "--out", str(tmp_path))

    http = json.loads((tmp_path / "bench_quick.json").read_text())["http"]
    assert http["similar"]["products"] == 4 and http["similar_popular"]["products"] == 4
    for name in ("similar", "similar_popular", "similar_uncached", "search_image_single", "search_image"):
        single, concurrent = http[name]["single_client"], http[name]["concurrent"]
        assert single["users"] == 1 and concurrent["users"] == 2
        assert single["requests"] > 0 and single["errors"] == 0 and concurrent["errors"] == 0
        assert single["user_class"] == "ApiClient"
    assert set(http["similar"]["concurrent"]["by_kind"]) == {"similar"}
    assert set(http["search_image"]["concurrent"]["by_kind"]) == {"search"}
    assert set(http["search_image_single"]["concurrent"]["by_kind"]) == {"search_single"}
    report = (tmp_path / "bench_quick.md").read_text()
    assert "GET /api/products/{id}/similar | 1 |" in report and "GET /api/products/{id}/similar, precomputed strips and strip cache off | 1 |" in report
    assert (tmp_path / "bench_quick_gunicorn_uncached.log").exists()

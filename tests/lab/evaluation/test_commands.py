"""Smoke tests of ``manage.py bench`` and ``manage.py evaluate`` with tiny limits (CI)."""

import http.client
import json
import os

import pytest
from django.core.management import call_command

from tests.factories import ProductImageFactory
from lab.benchmarks import gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def test_bench_quick_smoke(tmp_path, capsys):
    for i in range(4):
        ProductImageFactory(colour=(40 * i, 90, 200))
    call_command(
        "bench", "--quick", "--skip-http", "--sizes", "2000", "--batch-sizes", "4", "--throughput-images", "8",
        "--out", str(tmp_path),
    )
    result = json.loads((tmp_path / "bench_quick.json").read_text())
    assert result["mode"] == "quick" and result["not_finished"] == []
    row = result["throughput"]["by_batch"]["4"]
    assert row["forward_images_per_second"] > 0
    assert row.get("pipeline_images_per_second", 0) > 0, row.get("pipeline_error")
    # Both inference backends side by side, on the same images, computing the same vectors.
    side = result["throughput"]["backends"]["4"]
    assert side["torch"]["median"] > 0 and side["onnx"]["median"] > 0 and side["onnx_to_torch_paired_ratio"] > 0
    assert set(result["throughput"]["by_backend"]) == {"torch", "onnx"}
    assert result["throughput"]["agreement"]["min_cosine"] >= 0.9999
    (size,) = result["ann"]["sizes"]
    assert size["n"] == 2000
    assert size["numpy_exact"]["recall_at_10"] == 1.0
    assert size["balltree"]["recall_at_10"] == 1.0
    assert size["halfvec"]["hnsw"]["200"]["recall_at_10"] > 0.9
    assert size["vector"]["build"]["index_bytes"] > size["halfvec"]["build"]["index_bytes"]
    filtered = size["halfvec"]["filtered"]
    assert filtered["relaxed_order"]["mean_results"] >= filtered["off"]["mean_results"]
    for name in ("bench_quick.md", "bench_quick_ann.png", "bench_quick_throughput.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert not (tmp_path / "bench.json").exists()
    md = (tmp_path / "bench_quick.md").read_text()
    assert "exact numpy" in md and "iterative_scan" in md and "ONNX Runtime / torch" in md
    assert "Nearest neighbours" in capsys.readouterr().out


def test_evaluate_quick_smoke(tmp_path, shared_catalog, shared_consumer_photos, capsys):
    call_command(
        "evaluate", "--quick", "--gallery-size", "60", "--copies", "10", "--synthetic", "5", "--consumer-per-label", "1",
        "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), "--no-duplicates",
    )
    result = json.loads((tmp_path / "evaluate_quick.json").read_text())
    assert result["sizes"] == {"gallery": 60, "copies": 10, "synthetic": 5, "consumer": 17}
    assert set(result["models"]) == {"efficientnet_lite0", "baseline_colour_hog"}
    for entry in result["models"].values():
        for mode in ("exact", "index"):
            assert 0.0 <= entry[mode]["copies"]["r1"] <= entry[mode]["copies"]["r10"] <= 1.0
            assert entry[mode]["consumer_like"]["r10"] <= entry[mode]["consumer_like"]["r20"]
            assert set(entry[mode]["category"]["per_label"]) == set(result["chance_p10"])
    # On the copies (the same photo re-encoded) the CNN finds nearly every original.
    assert result["models"]["efficientnet_lite0"]["exact"]["copies"]["r10"] >= 0.9
    assert result["duplicate_detector"] == {"skipped": "duplicate detector: not run (--no-duplicates)"}
    assert (tmp_path / "tsne_quick.png").stat().st_size > 0
    assert "copies R@1" in (tmp_path / "evaluate_quick.md").read_text()
    # The second run takes every vector from the cache.
    capsys.readouterr()
    call_command(
        "evaluate", "--quick", "--gallery-size", "60", "--copies", "10", "--synthetic", "5", "--consumer-per-label", "1",
        "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), "--no-index", "--no-map", "--no-duplicates",
    )
    again = json.loads((tmp_path / "evaluate_quick.json").read_text())
    assert all(entry["encoded_now"] == 0 for entry in again["models"].values())
    assert again["models"]["efficientnet_lite0"]["exact"] == result["models"]["efficientnet_lite0"]["exact"]


def test_gunicorn_starts_answers_and_stops(tmp_path, settings):
    server = gunicorn.gunicorn_start(
        env_overrides={"DJANGO_DEBUG": "0", "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"]},
        workers=1, cwd=settings.BASE_DIR, log_path=tmp_path / "gunicorn.log",
    )
    statuses = []
    try:
        conn = http.client.HTTPConnection(gunicorn.LOOPBACK, server.port, timeout=30)
        for _ in range(3):  # one keep-alive connection, several requests
            conn.request("GET", "/api/schema/")
            response = conn.getresponse()
            statuses.append((response.status, len(response.read())))
        conn.close()
    finally:
        server.stop()
    assert [status for status, _ in statuses] == [200, 200, 200]
    assert all(size > 0 for _, size in statuses)
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.process.poll() is not None

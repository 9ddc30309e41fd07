"""``manage.py evaluate_complete_look`` over a small catalogue with stored looks: the scores
it reports are the pages' (own and borrowed looks), and the reports are written."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from lab.evaluation.complete_look import _percentile, looks_read, looks_score, screenshot_choice
from tests.recommender.test_complete_look import shop, store_look  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_scores_count_own_and_borrowed_looks_and_where_suggestions_come_from(shop):  # noqa: F811
    p, fam = shop["products"], shop["families"]
    store_look(p["tee1"], suggestions=[p["jeans3"], p["jeans1"], p["womens_jeans"]], family=fam["jeans"])
    ids = sorted(product.id for product in p.values())
    outcomes = looks_read(product_ids=ids)
    scores = looks_score(outcomes)
    assert scores["products"] == len(ids) == 10
    assert scores["own_look"] == pytest.approx(0.1)  # tee1
    shown = {o.product_id for o in outcomes if o.shown}
    assert {p["tee1"].id, p["tee0"].id, p["tee2"].id} <= shown  # the other tees borrow tee1's
    assert not shown & {p["sneaker0"].id, p["sneaker1"].id}
    assert scores["complementary"] == 1.0
    topwear = scores["per_product_family"]["Topwear"]
    assert topwear["products"] == 3 and topwear["own_look"] == pytest.approx(1 / 3)
    assert set(topwear["suggested_families"]) == {"Bottomwear"}
    assert set(scores["per_region_kind"]) == {"bottom"}
    assert scores["read_ms"]["own_median"] > 0 and scores["read_ms"]["borrowed_median"] > 0
    assert set(screenshot_choice(outcomes, count=2, seed=1)) <= shown


def test_the_command_writes_its_reports(shop, tmp_path):  # noqa: F811
    p, fam = shop["products"], shop["families"]
    store_look(p["tee1"], suggestions=[p["jeans3"]], family=fam["jeans"])
    call_command("evaluate_complete_look", "--quick", "--screenshots", "0", "--sample", "2", "--out", str(tmp_path), "--no-progress")
    report = json.loads((tmp_path / "complete_look_quick.json").read_text())
    assert report["scores"]["products"] == 10 and report["scores"]["compute_ms"]["sample"] == 2
    assert report["screenshots"] == []
    text = (tmp_path / "complete_look_quick.md").read_text()
    assert "share whose page shows a look" in text and "| Topwear | 3 |" in text


def test_the_command_needs_an_embedded_catalogue(db, tmp_path):
    with pytest.raises(CommandError, match="make demo"):
        call_command("evaluate_complete_look", "--out", str(tmp_path))


def test_percentiles_are_nearest_rank_samples():
    """numpy's "nearest" method: the sample at round(q * (n - 1)), ties to even, as the
    reports in docs/benchmarks.md were computed."""
    assert _percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert _percentile([float(v) for v in range(1, 21)], 0.95) == 19.0  # round(18.05) = 18
    assert _percentile([10.0, 20.0, 30.0], 0.25) == 10.0  # round(0.5) = 0
    assert _percentile([10.0, 20.0, 30.0], 0.75) == 30.0  # round(1.5) = 2
    assert _percentile([7.0], 0.95) == 7.0
    assert _percentile([], 0.95) is None

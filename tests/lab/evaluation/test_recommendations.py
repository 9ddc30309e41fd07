"""``manage.py evaluate_recommendations`` over a catalogue with known geometry (interests.py)."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from lab.evaluation.recommendations import catalogue_read, sessions_simulate
from tests.recommender.interests import build_interest_catalogue

pytestmark = pytest.mark.django_db


def test_sessions_are_seeded_and_view_two_to_four_categories_in_a_row():
    build_interest_catalogue()
    catalogue = catalogue_read()
    sessions = sessions_simulate(catalogue, n=40, seed=5, min_products=3)
    assert sessions == sessions_simulate(catalogue, n=40, seed=5, min_products=3)
    assert sessions != sessions_simulate(catalogue, n=40, seed=6, min_products=3)
    for session in sessions:
        assert 2 <= len(session.categories) == len(set(session.categories)) <= 4
        # In a row: the views are grouped by category, in the session's order.
        runs = [catalogue.category_of[pid] for pid in session.views]
        assert list(dict.fromkeys(runs)) == list(session.categories)
        assert all(len(catalogue.by_category[c]) >= 3 for c in session.categories)


def test_the_command_scores_before_and_after_and_writes_its_report(tmp_path, capsys):
    build_interest_catalogue()
    call_command("evaluate_recommendations", "--sessions", "30", "--out", str(tmp_path), "--no-progress")
    report = json.loads((tmp_path / "recommendations.json").read_text())
    before, after = report["methods"]["before"], report["methods"]["after"]
    assert report["sessions"] == 30 and report["k"] == 12 and report["seed"] == 7
    # Kurtas sit at the mean of flats, polos and bags: the mean vector lands on them.
    assert after["coverage"] > before["coverage"] and after["on_interest"] > before["on_interest"]
    assert after["coverage"] >= 0.9 and after["empty"] == 0
    assert 0.0 <= before["on_interest"] <= 1.0 and before["ms_median"] > 0
    assert "share of viewed categories in the list" in (tmp_path / "recommendations.md").read_text()
    assert "before" in capsys.readouterr().out


def test_without_an_embedded_catalogue_the_command_says_what_to_run(tmp_path):
    with pytest.raises(CommandError, match="make demo"):
        call_command("evaluate_recommendations", "--quick", "--out", str(tmp_path))

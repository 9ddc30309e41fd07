import json

import pytest
from django.core.management import call_command


@pytest.mark.integration
def test_evaluate_duplicates_prints_precision_recall_and_draws_the_curve(shared_catalog, tmp_path, capsys):
    call_command(
        "evaluate_duplicates", "--data", str(shared_catalog), "--limit", "8", "--negatives", "30", "--synthetic", "2",
        "--json", str(tmp_path / "eval.json"), "--plot", str(tmp_path / "pr.png"), "--no-progress",
    )
    out = capsys.readouterr().out
    assert "Near copies at score >=" in out and "Exact copies (same sha256): precision 1.0000, recall 1.0000" in out
    summary = json.loads((tmp_path / "eval.json").read_text())
    assert summary["near"]["positives"] == 8 and summary["near"]["recall"] == 1.0
    assert (tmp_path / "pr.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.django_db
def test_scan_duplicates_on_an_empty_catalogue(capsys):
    call_command("scan_duplicates", "--no-progress")
    assert "Nothing to scan" in capsys.readouterr().out

import importlib
from pathlib import Path

from visualsearch.evaluation.quality import EvalOptions, _duplicates_line, duplicate_detector_section


def test_hook_uses_evaluate_detector_when_the_detector_provides_it(monkeypatch):
    module = importlib.import_module("visualsearch.duplicates")
    calls = []

    def evaluate_detector(catalog_dir, *, quick, seed):
        calls.append((catalog_dir, quick, seed))
        return {"precision": 0.99, "recall": 0.9}

    monkeypatch.setattr(module, "evaluate_detector", evaluate_detector, raising=False)
    options = EvalOptions(models=("efficientnet_lite0",), quick=True, seed=3, catalog_dir=Path("/data/catalogue"))
    result = duplicate_detector_section(options)
    assert calls == [(Path("/data/catalogue"), True, 3)]
    assert result == {"precision": 0.99, "recall": 0.9, "source": "visualsearch.duplicates.evaluate_detector"}
    assert "precision 0.9900, recall 0.9000" in _duplicates_line(result)


def test_hook_reports_not_available_when_the_detector_fails(monkeypatch, tmp_path):
    # An empty folder: whatever the detector's own evaluation is, it cannot run here.
    options = EvalOptions(models=("efficientnet_lite0",), quick=True, catalog_dir=tmp_path)
    result = duplicate_detector_section(options)
    assert result["skipped"].startswith("duplicate detector: not available")
    assert _duplicates_line(result) == result["skipped"]

from pathlib import Path

from lab.evaluation.quality import EvalOptions, _duplicates_line, duplicate_detector_section


def test_section_runs_the_detector_evaluation_with_the_quick_settings(monkeypatch):
    from lab.evaluation import quality

    configs = []

    class Result:
        def summary(self, threshold):
            return {"threshold": threshold, "near": {"precision": 0.99, "recall": 0.9, "positives": 10}}

    def evaluate(config):
        configs.append(config)
        return Result()

    monkeypatch.setattr(quality, "evaluate", evaluate)
    options = EvalOptions(models=("efficientnet_lite0",), quick=True, seed=3, catalog_dir=Path("/data/catalogue"))
    result = duplicate_detector_section(options)
    assert [(c.data_dir, c.limit, c.synthetic) for c in configs] == [(Path("/data/catalogue"), 200, 0)]
    assert result["precision"] == 0.99 and result["recall"] == 0.9 and result["positives"] == 10
    assert "precision 0.9900, recall 0.9000" in _duplicates_line(result)


def test_hook_reports_not_available_when_the_detector_fails(monkeypatch, tmp_path):
    # An empty folder: whatever the detector's own evaluation is, it cannot run here.
    options = EvalOptions(models=("efficientnet_lite0",), quick=True, catalog_dir=tmp_path)
    result = duplicate_detector_section(options)
    assert result["skipped"].startswith("duplicate detector: not available")
    assert _duplicates_line(result) == result["skipped"]

"""Where ``evaluate_matching --record`` writes a model's chosen search settings."""

import json

from lab.evaluation.matching import record_path
from tests.lab.training.fixtures import models_dir  # noqa: F401  (fixture)
from visualsearch.embedding import config


def _model(folder, name):
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / "metadata.json").write_text(json.dumps({"name": name}))
    return folder / name / "metadata.json"


def test_records_go_to_trained_models_and_to_a_shipped_one_only_as_the_holdout(tmp_path, monkeypatch, models_dir):  # noqa: F811
    shipped, trained = tmp_path / "shipped", models_dir
    monkeypatch.setattr(config, "SHIPPED_MODELS_DIR", shipped)
    old, new = _model(shipped, "lite0-vitrine-old"), _model(shipped, "lite0-vitrine-new")
    mine = _model(trained, "lite0-vitrine-mine")

    # A model trained here is written, whichever model the run holds out.
    assert record_path("lite0-vitrine-mine", holdout_model="lite0-vitrine-new") == mine
    # A shipped model is written only as the run's hold-out model (ship_model's own run) ...
    assert record_path("lite0-vitrine-new", holdout_model="lite0-vitrine-new") == new
    # ... and left as committed when it is only compared.
    assert record_path("lite0-vitrine-old", holdout_model="lite0-vitrine-new") is None
    assert old.exists()
    # ImageNet backbones have nothing to record into.
    assert record_path("efficientnet_lite0", holdout_model="lite0-vitrine-new") is None

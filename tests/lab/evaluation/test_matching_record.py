"""Where ``evaluate_matching --record`` writes a model's chosen search settings, and what the evaluation's vector cache tells apart."""

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


def test_the_vector_cache_tells_a_float16_copy_from_its_float32_weights(models_dir):  # noqa: F811
    # ship_model scores a model's float16 copy under the name its float32 weights had: the
    # evaluation's cache must not hand back the float32 vectors for it.
    import torch

    from lab.evaluation.quality import encoder_for
    from tests.visualsearch.embedding.test_finetuned import NAME, publish
    from visualsearch.embedding import clear_cache

    publish(models_dir)
    full = encoder_for(NAME).fingerprint
    assert encoder_for(NAME).fingerprint == full  # the same weights: the same cache
    weights = models_dir / NAME / "weights.pt"
    torch.save({k: v.half() for k, v in torch.load(weights, weights_only=True).items()}, weights)
    clear_cache()
    assert encoder_for(NAME).fingerprint != full

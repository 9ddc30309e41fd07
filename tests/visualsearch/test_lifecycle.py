"""The model lifecycle: index a candidate beside the active model, keep it fresh, promote it
atomically once complete, roll back; through the services, the worker path and the staff page."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.factories import ProductImageFactory
from visualsearch import events, pipeline, selectors, services
from visualsearch.embedding import configure, reset_configuration
from visualsearch.embedding.finetuned import CHECKPOINT_FORMAT, ProjectionHead
from visualsearch.indexing import images_embed
from visualsearch.models import EmbeddingModel, ImageEmbedding, ModelActivation
from visualsearch.photos import product_search_by_photo

pytestmark = pytest.mark.django_db

BASE = "efficientnet_lite0"
CANDIDATE = "efficientnet_lite0-lifecycle-v1"


@pytest.fixture
def candidate_model(tmp_path, settings):
    """A small fine-tuned model (a random 64-d head on the backbone) in a models folder."""
    torch.manual_seed(0)
    head = ProjectionHead(1280, 64)
    folder = tmp_path / "models" / CANDIDATE
    folder.mkdir(parents=True)
    torch.save({f"head.{k}": v for k, v in head.state_dict().items()}, folder / "weights.pt")
    (folder / "metadata.json").write_text(json.dumps({
        "format": CHECKPOINT_FORMAT, "name": CANDIDATE, "backbone": BASE, "dim": 64,
        "head": {"in_dim": 1280, "hidden": 0, "out_dim": 64}, "train_last_stage": False,
    }))
    settings.VISUALSEARCH_MODEL = BASE
    configure(models_dir=folder.parent)
    yield CANDIDATE
    reset_configuration()


def _dims(model_name: str) -> set[int]:
    return set(ImageEmbedding.objects.filter(model_name=model_name).values_list("dim", flat=True))


def test_without_a_registry_the_setting_is_the_active_model(settings):
    settings.VISUALSEARCH_MODEL = BASE
    assert selectors.active_model_name() == BASE
    assert selectors.models_kept_fresh() == [BASE]


def test_index_promote_and_roll_back(candidate_model):
    images = [ProductImageFactory(colour=(30 * i, 90, 200 - 30 * i)) for i in range(4)]
    images_embed(image_ids=[img.id for img in images[:3]])
    assert _dims(BASE) == {1280} and not _dims(CANDIDATE)

    services.model_index_request(name=CANDIDATE)
    assert selectors.models_kept_fresh() == [BASE, CANDIDATE]
    with pytest.raises(services.ModelNotReady, match="lack a"):
        services.model_promote(name=CANDIDATE)

    # The backlog, in the background task's chunks; and a new upload gets both models' vectors.
    report = pipeline.model_index_build(name=CANDIDATE, limit=2)
    assert report.embedded == 2 and not report.complete
    images_embed(image_ids=[images[3].id])
    assert ImageEmbedding.objects.filter(image=images[3], model_name=CANDIDATE).exists()
    report = pipeline.model_index_build(name=CANDIDATE)
    assert report.complete and report.remaining == 0
    assert EmbeddingModel.objects.get(name=CANDIDATE).index_completed_at is not None

    user = get_user_model().objects.create_user("ops", is_staff=True)
    services.model_promote(name=CANDIDATE, actor=user)
    assert selectors.active_model_name() == CANDIDATE
    assert EmbeddingModel.objects.get(name=BASE).state == EmbeddingModel.State.STANDBY
    assert selectors.models_kept_fresh() == [CANDIDATE, BASE]  # the standby stays fresh: rollback is instant
    # Searches now embed the photo with the candidate and read its 64-d index.
    matches = product_search_by_photo(image=Image.open(images[0].image.path), k=2)
    assert matches and matches[0].product == images[0].product and matches[0].score > 0.99

    services.model_rollback(actor=user)
    assert selectors.active_model_name() == BASE
    assert [a.action for a in ModelActivation.objects.order_by("at", "id")] == ["promote", "rollback"]
    assert ModelActivation.objects.order_by("-at", "-id").first().previous_name == CANDIDATE


def test_staff_page_lists_models_and_promotes(client, candidate_model, django_capture_on_commit_callbacks):
    images = [ProductImageFactory(colour=(40 * i, 60, 90)) for i in range(2)]
    images_embed(image_ids=[img.id for img in images])
    staff = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    url = reverse("visualsearch:models")

    assert client.get(url).status_code == 302  # anonymous: to the login
    client.force_login(get_user_model().objects.create_user("shopper", password="pw"))
    assert client.get(url).status_code == 403
    client.force_login(staff)
    page = client.get(url).content.decode()
    assert f'data-model="{BASE}" data-state="active"' in page and f'data-model="{CANDIDATE}"' in page

    response = client.post(reverse("visualsearch:model_promote", args=[CANDIDATE]), follow=True)
    assert "was not promoted" in response.content.decode()  # nothing indexed yet
    with django_capture_on_commit_callbacks(execute=True):  # tasks run eagerly in tests, after the commit
        client.post(reverse("visualsearch:model_index", args=[CANDIDATE]))
    assert _dims(CANDIDATE) == {64}
    response = client.post(reverse("visualsearch:model_promote", args=[CANDIDATE]), follow=True)
    assert f"{CANDIDATE} now serves every search" in response.content.decode()
    assert selectors.active_model_name() == CANDIDATE
    response = client.post(reverse("visualsearch:model_rollback"), follow=True)
    assert f"{BASE} serves every search again" in response.content.decode()


def test_promotion_and_rollback_are_announced_after_the_commit(candidate_model, django_capture_on_commit_callbacks):
    images = [ProductImageFactory(colour=(50 * i, 80, 120)) for i in range(2)]
    images_embed(image_ids=[img.id for img in images])
    services.model_index_request(name=CANDIDATE)
    assert pipeline.model_index_build(name=CANDIDATE).complete
    heard = []

    def listener(sender, **kwargs):
        heard.append((kwargs["model_name"], kwargs["previous_name"]))

    events.active_model_changed.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=False) as pending:
            services.model_promote(name=CANDIDATE)
        assert heard == []  # nothing before the commit
        for callback in pending:
            callback()
        with django_capture_on_commit_callbacks(execute=True):
            services.model_rollback()
    finally:
        events.active_model_changed.disconnect(listener)
    assert heard == [(CANDIDATE, BASE), (BASE, CANDIDATE)]

"""efficientnet_lite0 embeddings: shapes, invariances, input modes and device choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from visualsearch.embedding import Embedder, EmbedderConfigError, configure, load_embedder
from visualsearch.embedding.embedder import resolve_device

from .helpers import clean_embedding_config  # noqa: F401  (autouse fixture)
from .helpers import jpeg_roundtrip, picture, with_exif_orientation


@pytest.fixture
def lite() -> Embedder:
    return load_embedder("efficientnet_lite0")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)  # rows are unit length


def assert_unit_rows(vectors: np.ndarray, dim: int) -> None:
    assert vectors.dtype == np.float32
    assert vectors.shape[1] == dim
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_efficientnet_lite0_is_the_imagenet_model(lite: Embedder) -> None:
    assert load_embedder("efficientnet_lite0") is lite  # cached by name (the default is the shipped model)
    assert (lite.name, lite.dim) == ("efficientnet_lite0", 1280)


def test_shape_dtype_and_unit_norm(lite: Embedder) -> None:
    vectors = lite.embed([picture(seed) for seed in range(3)])
    assert vectors.shape == (3, 1280)
    assert_unit_rows(vectors, 1280)


def test_empty_input(lite: Embedder) -> None:
    vectors = lite.embed([])
    assert vectors.shape == (0, 1280)
    assert vectors.dtype == np.float32
    assert lite.embed_tensors(torch.empty(0, 3, 224, 224)).shape == (0, 1280)


def test_batch_size_does_not_change_embeddings(lite: Embedder) -> None:
    images = [picture(seed, (120 + 10 * seed, 160)) for seed in range(5)]
    together = lite.embed(images, batch_size=5)
    in_pairs = lite.embed(images, batch_size=2)
    alone = np.concatenate([lite.embed([image]) for image in images])
    np.testing.assert_allclose(together, alone, atol=1e-4)
    np.testing.assert_allclose(in_pairs, alone, atol=1e-4)


def test_deterministic(lite: Embedder) -> None:
    images = [picture(11), picture(12)]
    np.testing.assert_array_equal(lite.embed(images), lite.embed(images))


def test_embed_tensors_matches_embed(lite: Embedder) -> None:
    images = [picture(21, (90, 120)), picture(22)]
    batch = torch.stack([lite.preprocess(image) for image in images])
    assert batch.shape == (2, 3, 224, 224)
    assert batch.dtype == torch.float32
    np.testing.assert_allclose(lite.embed_tensors(batch), lite.embed(images), atol=1e-5)


def test_embed_tensors_rejects_wrong_shape(lite: Embedder) -> None:
    with pytest.raises(ValueError, match="shape"):
        lite.embed_tensors(torch.zeros(3, 224, 224))


def test_invalid_batch_size(lite: Embedder) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        lite.embed([picture(1)], batch_size=0)


def test_same_picture_is_closer_than_a_different_one(lite: Embedder) -> None:
    original = picture(31, (240, 320))
    smaller = original.resize((120, 160), Image.Resampling.BILINEAR)
    recompressed = jpeg_roundtrip(original, quality=60)
    other = picture(32, (240, 320))
    a, b, c, d = lite.embed([original, smaller, recompressed, other])
    different = cosine(a, d)
    assert cosine(a, b) > 0.9
    assert cosine(a, c) > 0.9
    assert cosine(a, b) - different > 0.1
    assert cosine(a, c) - different > 0.1


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_rotated_equals_upright(lite: Embedder, orientation: int) -> None:
    upright = picture(41, (150, 200))
    upright_vec, rotated_vec = lite.embed([upright, with_exif_orientation(upright, orientation)])
    np.testing.assert_allclose(rotated_vec, upright_vec, atol=1e-5)


def test_other_colour_modes(lite: Embedder) -> None:
    base = picture(51, (100, 130))
    rgba = base.convert("RGBA")
    rgba.putalpha(200)
    palette = base.convert("P", palette=Image.Palette.ADAPTIVE)
    sixteen_bit = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)  # "I;16"
    assert sixteen_bit.mode == "I;16"
    images = [rgba, base.convert("L"), base.convert("CMYK"), palette, sixteen_bit]
    vectors = lite.embed(images)
    assert_unit_rows(vectors, 1280)
    np.testing.assert_allclose(vectors[4], lite.embed([base.convert("L")])[0], atol=1e-5)


def test_fully_transparent_image_embeds_like_white(lite: Embedder) -> None:
    transparent = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    white = Image.new("RGB", (64, 64), (255, 255, 255))
    np.testing.assert_allclose(*lite.embed([transparent, white]), atol=1e-5)


def test_cpu_when_cuda_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert load_embedder().device == "cpu"


def test_device_selection_logic() -> None:
    assert resolve_device("auto", lambda: True) == "cuda"
    assert resolve_device("auto", lambda: False) == "cpu"
    assert resolve_device("cpu", lambda: True) == "cpu"
    assert resolve_device("cuda:1", lambda: True) == "cuda:1"
    with pytest.raises(EmbedderConfigError, match="CUDA is not available"):
        resolve_device("cuda", lambda: False)


def test_pinned_cuda_without_gpu_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    configure(device="cuda")
    with pytest.raises(EmbedderConfigError, match="CUDA"):
        load_embedder()


def test_env_device_cpu_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISUALSEARCH_DEVICE", "cpu")
    assert load_embedder().device == "cpu"


def test_resize_policy_is_configurable() -> None:
    configure(resize_policy="pad")
    embedder = load_embedder()
    assert embedder.resize_policy == "pad"
    # A tall image is padded: white margins left and right of the 224 square.
    tensor = embedder.preprocess(Image.new("RGB", (50, 100), (0, 0, 0)))
    assert tensor[:, 112, 0].tolist() == pytest.approx([1.0] * 3, abs=1e-6)


def test_missing_configured_lite_weights_file(tmp_path) -> None:
    configure(weights={"efficientnet_lite0": str(tmp_path / "missing.pth")})
    with pytest.raises(EmbedderConfigError, match="never downloaded"):
        load_embedder()


def test_preprocessor_pickles_for_dataloader_workers(lite: Embedder) -> None:
    import pickle

    clone = pickle.loads(pickle.dumps(lite.preprocessor))
    image = picture(61, (80, 100))
    assert torch.equal(clone(image), lite.preprocess(image))


def test_mirror_averaging_makes_an_image_and_its_mirror_one_vector(lite: Embedder) -> None:
    image = picture(31, (150, 200))
    mirrored = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    plain = lite.embed([image, mirrored])
    assert cosine(plain[0], plain[1]) < 0.999  # the test picture is not symmetric

    configure(mirror_average="on")
    averaged = load_embedder("efficientnet_lite0")
    assert averaged.mirror_average and not lite.mirror_average
    vectors = averaged.embed([image, mirrored])
    assert_unit_rows(vectors, 1280)
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-5)
    # The mean of the two plain vectors, normalised: what the hold-out numbers were measured with.
    mean = plain[0] + plain[1]
    np.testing.assert_allclose(vectors[0], mean / np.linalg.norm(mean), atol=1e-5)


def test_mirror_averaging_follows_the_model_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from visualsearch.embedding.config import EmbeddingSettings

    assert EmbeddingSettings().mirrors({"mirror_average": True})
    assert not EmbeddingSettings().mirrors({}) and not EmbeddingSettings().mirrors(None)
    assert not EmbeddingSettings(mirror_average="off").mirrors({"mirror_average": True})
    assert EmbeddingSettings(mirror_average="on").mirrors(None)
    monkeypatch.setenv("VISUALSEARCH_MIRROR_AVERAGE", "off")
    assert load_embedder().mirror_average is False
    monkeypatch.setenv("VISUALSEARCH_MIRROR_AVERAGE", "sideways")
    with pytest.raises(EmbedderConfigError, match="mirror averaging"):
        load_embedder("efficientnet_lite0")
    with pytest.raises(EmbedderConfigError, match="mirror averaging"):
        configure(mirror_average="both")


def test_queries_without_a_crop_are_embedded_like_the_catalogue(lite: Embedder) -> None:
    assert lite.query_crop is None  # a backbone records none
    images = [picture(seed, (140, 180)) for seed in range(3)]
    np.testing.assert_array_equal(lite.embed_queries(images), lite.embed(images))


def test_a_query_crop_adds_the_centre_crops_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    from visualsearch.embedding.config import EmbeddingSettings
    from visualsearch.embedding.preprocess import centre_crop

    monkeypatch.setattr(EmbeddingSettings, "query_crop_share", lambda self, metadata: 0.8)
    cropping = load_embedder("efficientnet_lite0")
    assert cropping.query_crop == 0.8
    images = [picture(seed, (150 + 20 * seed, 200)) for seed in range(3)]
    queries = cropping.embed_queries(images, batch_size=4)  # two photos and their crops per batch
    assert_unit_rows(queries, 1280)
    whole = cropping.embed(images)
    crops = cropping.embed([centre_crop(image, 0.8) for image in images])
    assert crops[0].shape == (1280,) and cosine(whole[0], crops[0]) < 0.999  # the crop is another picture
    expected = whole + crops
    np.testing.assert_allclose(queries, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)
    # One at a time, or sideways with an EXIF tag, the same vectors.
    np.testing.assert_allclose(np.concatenate([cropping.embed_queries([image]) for image in images]), queries, atol=1e-4)
    upright = images[0]
    sideways = with_exif_orientation(upright, 6)
    np.testing.assert_allclose(cropping.embed_queries([sideways])[0], queries[0], atol=1e-4)
    assert cropping.embed_queries([]).shape == (0, 1280)
    with pytest.raises(ValueError, match="batch_size"):
        cropping.embed_queries(images, batch_size=0)
    # A region (a drawn box, a garment found) is already framed on the garment: embedded as it is.
    mixed = cropping.embed_queries(images, whole=[False, True, False], batch_size=2)
    np.testing.assert_allclose(mixed[[0, 2]], whole[[0, 2]], atol=1e-5)
    np.testing.assert_allclose(mixed[1], queries[1], atol=1e-5)
    np.testing.assert_allclose(cropping.embed_queries(images, whole=[False] * 3), whole, atol=1e-5)
    with pytest.raises(ValueError, match="flags"):
        cropping.embed_queries(images, whole=[True])


def test_centre_crop_keeps_the_middle_share_of_each_side() -> None:
    from visualsearch.embedding.preprocess import centre_crop

    image = picture(3, (200, 100))
    crop = centre_crop(image, 0.8)
    assert crop.size == (160, 80)
    assert np.array_equal(np.asarray(crop), np.asarray(image)[10:90, 20:180])
    assert centre_crop(picture(4, (1, 1)), 0.5).size == (1, 1)


def test_the_query_crop_follows_the_model_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from visualsearch.embedding.config import EmbeddingSettings

    assert EmbeddingSettings().query_crop_share({"query_crop": 0.8}) == 0.8
    assert EmbeddingSettings().query_crop_share({}) is None and EmbeddingSettings().query_crop_share(None) is None
    assert EmbeddingSettings(query_crop="off").query_crop_share({"query_crop": 0.8}) is None
    for bad in (0, 1.0, 1.5, "wide"):
        with pytest.raises(EmbedderConfigError, match="query crop"):
            EmbeddingSettings().query_crop_share({"query_crop": bad})
    monkeypatch.setenv("VISUALSEARCH_QUERY_CROP", "off")
    assert load_embedder().query_crop is None and load_embedder().mirror_average  # only the crop is off
    monkeypatch.setenv("VISUALSEARCH_QUERY_CROP", "sideways")
    for bad_setting in (lambda: load_embedder("efficientnet_lite0"), lambda: configure(query_crop="on")):
        with pytest.raises(EmbedderConfigError, match="Unknown query crop"):
            bad_setting()

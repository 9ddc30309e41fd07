"""Local-feature verification on generated photos, one re-listing edit at a time (no database)."""

import io
from dataclasses import replace

import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from tests.visualsearch.duplicates.photos import TROUSERS, photo, relisted_copy
from visualsearch.duplicates.verification import (
    DEFAULT_VERIFY_THRESHOLDS,
    EDIT_BORDER,
    EDIT_CROP,
    EDIT_MIRROR,
    EDIT_RESIZE,
    EDIT_ROTATE,
    MAX_KEYPOINTS,
    MIN_KEYPOINTS_FOUND,
    Verification,
    image_features,
    verified_score,
    verify,
)

ORIGINAL = photo(print_seed=3, size=(300, 400))


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer)


def _crop(image: Image.Image, share: float) -> Image.Image:
    w, h = image.size
    return image.crop((int(w * share), int(h * share), w - int(w * share), h - int(h * share)))


def _text(image: Image.Image) -> Image.Image:
    image = image.copy()
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 340, 150, 380), fill=(250, 200, 0))
    draw.text((28, 346), "Rs. 799", fill="black")
    draw.text((160, 20), "fashion_hub", fill=(90, 90, 90))
    return image


EDITS = {
    "crop 10%": lambda im: _crop(im, 0.10),
    "text overlay": _text,
    "border": lambda im: ImageOps.expand(im, border=24, fill=(20, 20, 20)),
    "resize to a thumbnail": lambda im: im.resize((90, 120), Image.Resampling.BILINEAR),
    "brightness": lambda im: ImageEnhance.Brightness(im).enhance(1.25),
    "rotation": lambda im: im.rotate(6, resample=Image.Resampling.BILINEAR, fillcolor="white"),
    "mirror": ImageOps.mirror,
    "jpeg 30": lambda im: _jpeg(im, 30),
}


def check(copy: Image.Image, original: Image.Image = ORIGINAL, *, cosine: float = 0.9):
    result = verify(image_features(copy, mirrored=True), image_features(original))
    return result, DEFAULT_VERIFY_THRESHOLDS.passes(result, cosine=cosine)


def _catalogue_photo(folder, product_id: int) -> Image.Image:
    return Image.open(folder / "images" / f"{product_id}.jpg").convert("RGB")


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_each_relisting_edit_is_verified_as_the_same_photo(edit):
    result, passed = check(EDITS[edit](ORIGINAL))
    assert passed, result
    assert result.inliers >= DEFAULT_VERIFY_THRESHOLDS.min_inliers


def test_composed_edits_are_verified_and_named():
    copy = _jpeg(ImageOps.mirror(ImageOps.expand(_crop(_text(ORIGINAL), 0.08), border=6, fill="white")), 60)
    result, passed = check(copy)
    assert passed, result
    assert result.mirrored and EDIT_MIRROR in result.edits
    assert EDIT_CROP in result.edits or EDIT_BORDER in result.edits
    assert 0.5 < verified_score(result) <= 1.0


def test_edit_guesses():
    assert EDIT_ROTATE in check(EDITS["rotation"](ORIGINAL))[0].edits
    assert EDIT_RESIZE in check(EDITS["resize to a thumbnail"](ORIGINAL))[0].edits
    assert EDIT_CROP in check(EDITS["crop 10%"](ORIGINAL))[0].edits
    assert EDIT_BORDER in check(EDITS["border"](ORIGINAL))[0].edits
    plain = check(_jpeg(ORIGINAL, 90))[0]
    assert not plain.mirrored and EDIT_MIRROR not in plain.edits


def test_same_shape_in_another_colour_is_not_a_copy():
    navy = photo(colour=(28, 40, 92), print_seed=3, size=(300, 400))
    result, passed = check(navy, cosine=0.97)
    assert not passed, result
    assert result.colour_shift > DEFAULT_VERIFY_THRESHOLDS.max_colour_shift


@pytest.mark.parametrize("other", ["another print", "other garment"])
def test_a_different_garment_is_not_a_copy(other):
    image = photo(print_seed=11, size=(300, 400)) if other == "another print" else photo(shape=TROUSERS, print_seed=4, size=(300, 400))
    result, passed = check(image, cosine=0.95)
    assert not passed, result


def test_a_low_cosine_candidate_is_not_passed_whatever_the_keypoints():
    result, _ = check(_jpeg(ORIGINAL, 90))
    assert not DEFAULT_VERIFY_THRESHOLDS.passes(result, cosine=0.2)


def test_keypoints_are_capped_and_blank_pictures_do_not_fail():
    assert len(image_features(ORIGINAL.resize((1200, 1600))).plain) <= MAX_KEYPOINTS
    blank = Image.new("RGB", (200, 300), "white")
    result = verify(image_features(blank, mirrored=True), image_features(ORIGINAL))
    assert result.inliers == 0 and not result.same_photo


def test_the_matched_region_is_where_the_copy_came_from():
    # The copy is the left 60% of the original: in the original the matching points lie in
    # that part, in the copy they spread over it.
    w, h = ORIGINAL.size
    copy = ORIGINAL.crop((0, 0, int(0.6 * w), h))
    result, passed = check(copy)
    assert passed
    left, upper, right, lower = result.region_b  # the original (b in check)
    assert right <= 0.65 and left < 0.2 and lower - upper > 0.5
    # The same points, as shares of a picture 0.6 as wide: their span is wider in the copy.
    assert result.region_a[2] - result.region_a[0] > (result.region_b[2] - result.region_b[0]) * 1.4


def test_the_matched_region_of_a_mirrored_copy_is_in_the_stored_orientation():
    w, h = ORIGINAL.size
    copy = ImageOps.mirror(ORIGINAL.crop((0, 0, int(0.6 * w), h)))  # the original's left part, mirrored
    result, passed = check(copy)
    assert passed and EDIT_MIRROR in result.edits
    assert result.region_b[2] <= 0.65  # still the original's left part
    assert all(0.0 <= v <= 1.0 for v in (*result.region_a, *result.region_b))


def test_another_shot_in_the_same_pose_changes_more_of_the_picture_than_a_sticker():
    # The same "model" (the generated photo's background, pose and trousers) in another shirt:
    # the keypoints of everything but the shirt agree, the shirt's area differs.
    other_shirt = photo(print_seed=11, size=(300, 400))
    sticker, sticker_passes = check(_text(ORIGINAL))
    reshoot, reshoot_passes = check(other_shirt)
    assert sticker_passes and not reshoot_passes
    assert sticker.changed < reshoot.changed  # 0.28 against 0.47 on these generated photos
    assert sticker.as_evidence()["changed"] == sticker.changed


def test_a_same_pose_shot_of_another_print_is_told_apart_by_its_detail(shared_catalog):
    # Real catalogue photos: two Puma T-shirts shot in one session, the same model and pose,
    # the logo green on one and yellow on the other. Face, arms and jeans give the keypoints
    # one transform, and the colours are close; the fine detail is not the same.
    green, yellow = _catalogue_photo(shared_catalog, 10058), _catalogue_photo(shared_catalog, 10069)
    reshoot, passes = check(yellow, green)
    assert reshoot.inliers >= DEFAULT_VERIFY_THRESHOLDS.min_inliers  # the geometry alone would flag it
    assert reshoot.inlier_share >= DEFAULT_VERIFY_THRESHOLDS.min_inlier_share
    assert reshoot.detail > DEFAULT_VERIFY_THRESHOLDS.max_detail and not passes
    assert reshoot.as_evidence()["detail"] == reshoot.detail
    # A re-listing of the very photo keeps its detail (and two listings of one photo of jeans).
    relisted, relisted_passes = check(relisted_copy(green), green)
    assert relisted_passes and relisted.detail <= 0.2
    same, same_passes = check(_catalogue_photo(shared_catalog, 13260), _catalogue_photo(shared_catalog, 13259))
    assert same_passes and same.detail <= 0.2


def test_where_the_detail_agrees_fewer_matching_points_and_a_saturation_edit_still_pass():
    t = DEFAULT_VERIFY_THRESHOLDS
    worn = Verification(inliers=60, matches=200, area=0.2, mirrored=False, inlier_share=0.12, colour_shift=10.0, detail=0.05)
    assert t.passes(worn, cosine=0.8)  # a copy with 3-4 composed edits: few points, colours moved, detail kept
    reshoot = Verification(inliers=60, matches=200, area=0.2, mirrored=False, inlier_share=0.12, colour_shift=10.0, detail=0.3)
    assert not t.passes(reshoot, cosine=0.8)  # the same numbers with the detail of another shot
    assert not t.passes(Verification(inliers=60, matches=200, area=0.2, mirrored=False, inlier_share=0.3, colour_shift=3.0, detail=0.6), cosine=0.8)
    assert t.passes(Verification(inliers=60, matches=200, area=0.2, mirrored=False, inlier_share=0.3, colour_shift=3.0, detail=0.4, agreement=0.9), cosine=0.8)


def _tone(image: Image.Image, brightness: float, contrast: float, saturation: float) -> Image.Image:
    image = ImageEnhance.Brightness(image).enhance(brightness)
    image = ImageEnhance.Contrast(image).enhance(contrast)
    return ImageEnhance.Color(image).enhance(saturation)


@pytest.mark.parametrize("tone", [(1.0, 1.3, 1.0), (0.8, 0.75, 1.3), (1.2, 1.0, 0.6), (1.1, 1.2, 1.3)])
def test_a_global_tone_edit_is_not_a_colour_change(tone):
    # (brightness, contrast, saturation) as Pillow's ImageEnhance. A filter moves every
    # colour at once; the aligned colour shift discounts it. Before the discount these four
    # measured 48, 15, 24 and 51 on this saturated red (contrast clips its G and B).
    result, passed = check(_tone(ORIGINAL, *tone))
    assert passed, result
    assert result.colour_shift <= DEFAULT_VERIFY_THRESHOLDS.max_colour_shift


def test_a_recolour_is_not_explained_as_a_tone_edit():
    # The garment's hue turned (red -> blue) and the white kept: no brightness, contrast or
    # saturation setting makes one from the other.
    r, g, b = ORIGINAL.split()
    recoloured = Image.merge("RGB", (b, g, r))
    result, passed = check(_tone(recoloured, 1.0, 1.1, 1.2), cosine=0.97)
    assert not passed, result
    assert result.colour_shift > DEFAULT_VERIFY_THRESHOLDS.max_colour_shift


def test_tone_matching_recovers_the_edit_within_its_bounds_only():
    import numpy as np

    from visualsearch.duplicates.verification import GREY_WEIGHTS, _tone_matched

    rng = np.random.default_rng(0)
    x = rng.uniform(20, 230, size=(400, 3))
    grey = x @ GREY_WEIGHTS
    edited = 1.1 * (0.7 * x + 0.3 * grey[:, None]) - 12  # gain 1.1, saturation 0.7, darker
    assert np.abs(_tone_matched(x, edited) - edited).max() < 1e-6
    swapped = x[:, ::-1]  # a hue change: would need a saturation far below zero
    assert np.abs(_tone_matched(x, swapped) - swapped).mean() > 20


def test_a_soft_thumbnail_yields_keypoints_and_is_verified(shared_catalog):
    # A catalogue photo shrunk to 88 px and upsampled to the feature side is so soft that
    # FAST at its usual threshold finds about 10 corners on it (no transform can be fitted);
    # the lower thresholds find hundreds.
    import cv2

    from visualsearch.duplicates import verification

    original = _catalogue_photo(shared_catalog, 17085)
    thumbnail = original.resize((88, 88), Image.Resampling.BILINEAR)
    grey = cv2.cvtColor(verification._rgb_at_feature_side(thumbnail), cv2.COLOR_RGB2GRAY)
    assert len(verification._orb().detect(grey)) < MIN_KEYPOINTS_FOUND
    assert len(image_features(thumbnail).plain) >= MIN_KEYPOINTS_FOUND
    rotated = original.rotate(5, resample=Image.Resampling.BILINEAR, fillcolor="white").resize((80, 80), Image.Resampling.BILINEAR)
    for copy in (thumbnail, rotated):
        result, passed = check(copy, original)
        assert passed, result


def test_a_copy_whose_patches_agree_passes_with_few_matches(shared_catalog):
    # A real re-listing from the benchmark (text, mirror, border, rotation composed): 82
    # matches agree with one transform but they are only 0.17 of the keypoints there, under
    # the share a copy needs; looked at where the transform puts them, 0.9+ of the
    # keypoints' patches are the same. A colourway of one studio shot agrees as well, and is
    # still told apart by its colour.
    from lab.relisting import relisted_copy as benchmark_copy
    from visualsearch.duplicates.verification import MIN_AGREEMENT

    original = _catalogue_photo(shared_catalog, 21047)
    copy, edits, _ = benchmark_copy(original, seed=7, item_id="21047")
    assert set(edits) == {"overlay", "mirror", "border", "rotate"}
    result, passed = check(copy, original)
    assert result.inlier_share < DEFAULT_VERIFY_THRESHOLDS.min_inlier_share
    assert result.agreement >= MIN_AGREEMENT and passed, result
    colourway, colourway_passes = check(_catalogue_photo(shared_catalog, 21285), _catalogue_photo(shared_catalog, 21287), cosine=0.96)
    assert colourway.agreement >= MIN_AGREEMENT
    assert colourway.colour_shift > DEFAULT_VERIFY_THRESHOLDS.agreement_max_colour_shift and not colourway_passes


def test_patches_of_another_print_do_not_agree():
    other, _ = check(photo(print_seed=11, size=(300, 400)), cosine=0.95)
    copy, _ = check(ORIGINAL.rotate(8, resample=Image.Resampling.BILINEAR, fillcolor="white").resize((66, 88), Image.Resampling.BILINEAR))
    assert copy.agreement >= 0.95 and other.agreement < 0.5  # 1.0 and 0.15 here


def test_the_agreement_rule():
    t = DEFAULT_VERIFY_THRESHOLDS
    worn = Verification(inliers=40, matches=120, area=0.2, mirrored=True, inlier_share=0.12, colour_shift=2.0, detail=0.4, agreement=0.9)
    assert t.passes(worn, cosine=0.8)
    assert not t.passes(replace(worn, agreement=0.6), cosine=0.8)
    assert not t.passes(replace(worn, colour_shift=4.5), cosine=0.8)  # a colourway agrees too
    assert not t.passes(replace(worn, inliers=10), cosine=0.8)
    assert not t.passes(replace(worn, detail=0.6), cosine=0.8)  # dark products of one series: silhouettes agree
    assert not t.passes(worn, cosine=0.2)
    assert worn.as_evidence()["agreement"] == 0.9


def test_pictures_at_one_scale_and_angle_are_held_to_a_tighter_detail_limit():
    # A studio series shot with one camera set-up lines up with a shift alone, as an
    # unresized copy does; the copy differs only under what was written on it.
    t = DEFAULT_VERIFY_THRESHOLDS
    shifted = (1.0, 0.0, 4.0, 0.0, 1.0, -2.0)
    series = Verification(
        inliers=150, matches=200, area=0.3, mirrored=False, inlier_share=0.3, colour_shift=1.0, detail=0.4, transform=shifted, agreement=0.9
    )
    assert series.unmoved and not t.passes(series, cosine=0.9)
    assert t.passes(replace(series, detail=0.2), cosine=0.9)  # a copy with a sticker
    resized = replace(series, transform=(0.8, 0.0, 4.0, 0.0, 0.8, -2.0))
    rotated = replace(series, transform=(0.995, -0.087, 4.0, 0.087, 0.995, -2.0))  # 5 degrees
    for moved in (resized, rotated, replace(series, mirrored=True)):
        assert not moved.unmoved and t.passes(moved, cosine=0.9)
    # A brightened copy matches most of its keypoints; its clipped highlights lose detail.
    assert t.passes(replace(series, inlier_share=0.8), cosine=0.9)


def test_a_pair_whose_patches_disagree_must_keep_its_detail_and_change_little():
    # Another shot in the same pose: matching points from the face, the belt, the
    # silhouette; its patches agree less than a copy's, and either its fine detail or much
    # of its content differs. A copy whose patches disagree (a thumbnail, a sticker) keeps both.
    t = DEFAULT_VERIFY_THRESHOLDS
    copy = Verification(inliers=80, matches=150, area=0.2, mirrored=False, inlier_share=0.25, colour_shift=2.0, detail=0.2, changed=0.15, agreement=0.7)
    assert t.passes(copy, cosine=0.9)
    assert not t.passes(replace(copy, detail=0.36), cosine=0.9)  # another shirt on the same model
    assert not t.passes(replace(copy, changed=0.3), cosine=0.9)  # the same mannequin in other tights
    # Patches that agree like a copy's keep the wider limits.
    assert t.passes(replace(copy, detail=0.36, agreement=0.9), cosine=0.9)
    assert t.passes(replace(copy, changed=0.3, agreement=0.9), cosine=0.9)


@pytest.mark.parametrize(
    "first, second",
    [(21320, 21322), (14599, 20036), (17373, 17375), (17885, 17887)],
    ids=[
        "sunglasses in two colourways, one shot", "opaque and sheer tights on one mannequin",
        "one gift box shot with other ties", "one vest in two greys",
    ],
)
def test_same_pose_shots_of_other_products_are_not_copies_whichever_came_first(shared_catalog, first, second):
    # Labelled negatives that the geometry alone passes (evaluate_duplicates --verify,
    # 2026-12-07): enough points agree on one transform, the colours are close. The boxes and
    # the vest passed when the newer listing was warped onto the older (detail 0.23 / 0.26) and
    # not the other way (0.42 / 0.36): the verdict is now the worse direction's (session 34).
    a, b = _catalogue_photo(shared_catalog, first), _catalogue_photo(shared_catalog, second)
    for query, candidate in ((b, a), (a, b)):
        result = verify(image_features(query, mirrored=True), image_features(candidate))
        assert result.inliers >= DEFAULT_VERIFY_THRESHOLDS.min_inliers
        assert result.agreement < DEFAULT_VERIFY_THRESHOLDS.reshoot_max_agreement
        assert not DEFAULT_VERIFY_THRESHOLDS.passes(result, cosine=0.9), result


def test_a_studio_series_at_one_camera_set_up_is_not_a_copy(shared_catalog):
    # Two Mark Taylor shirts, white and light pink, shot with one set-up: the model stands a
    # pixel or so elsewhere, face, belt and trousers match (share 0.31), the shirt's detail
    # differs on a third of the textured windows. A brightened copy of one of them keeps it.
    white, pink = _catalogue_photo(shared_catalog, 17549), _catalogue_photo(shared_catalog, 17553)
    series, series_passes = check(pink, white, cosine=0.85)
    assert series.unmoved and series.detail > DEFAULT_VERIFY_THRESHOLDS.unmoved_max_detail and not series_passes
    brighter, brighter_passes = check(ImageEnhance.Brightness(white).enhance(1.12), white)
    assert brighter.unmoved and brighter_passes, brighter


def test_points_inside_the_overlap_are_counted_as_opencv_counts_them():
    """``_inside`` counts in one numpy pass what ``cv2.pointPolygonTest(...) >= 0`` counts
    point by point: the overlaps of transformed frames (either orientation), points on
    their edges and corners, outside and inside."""
    import cv2
    import numpy as np

    from visualsearch.duplicates.verification import _inside

    rng = np.random.default_rng(4)
    frame = np.array([[0, 0], [256, 0], [256, 341], [0, 341]], np.float32)
    checked = 0
    for _ in range(200):
        angle, scale = np.deg2rad(rng.uniform(-25, 25)), rng.uniform(0.5, 1.5)
        model = np.array([[scale * np.cos(angle), -scale * np.sin(angle), rng.uniform(-80, 80)],
                          [scale * np.sin(angle), scale * np.cos(angle), rng.uniform(-80, 80)]], np.float32)
        moved = cv2.transform(frame[None], model)[0].astype(np.float32)
        _, polygon = cv2.intersectConvexConvex(frame, moved)
        if polygon is None or len(polygon) < 3:
            continue
        corners = polygon.reshape(-1, 2)
        on_edges = corners + rng.uniform(0, 1, (len(corners), 1)) * (np.roll(corners, -1, axis=0) - corners)
        points = np.concatenate([rng.uniform(-40, 300, (300, 2)), corners, on_edges, np.round(on_edges)]).astype(np.float32)
        for shape in (polygon, polygon[::-1]):
            contour = shape.reshape(-1, 1, 2).astype(np.float32)
            expected = sum(cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in points)
            assert _inside(points, shape) == expected
            checked += 1
    assert checked > 300
    assert _inside(np.zeros((0, 2), np.float32), polygon) == 0
    assert _inside(np.ones((3, 2), np.float32), None) == 0


def test_a_mirror_added_later_is_the_mirror_computed_with_the_image():
    from visualsearch.duplicates.verification import with_mirror

    together = image_features(ORIGINAL, mirrored=True)
    later = with_mirror(image_features(ORIGINAL))
    for got, expected in ((later.plain, together.plain), (later.mirrored, together.mirrored)):
        assert (got.points == expected.points).all() and (got.descriptors == expected.descriptors).all()
        assert got.size == expected.size and got.original_size == expected.original_size
    assert verify(later, image_features(_jpeg(ORIGINAL.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 80))) == verify(
        together, image_features(_jpeg(ORIGINAL.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 80))
    )


def test_below_the_least_inliers_no_threshold_passes_whatever_was_measured():
    """The bound that lets the service skip the aligned-pixel measures is the thresholds' own."""
    t = DEFAULT_VERIFY_THRESHOLDS
    best_case = Verification(inliers=t.least_inliers, matches=500, area=1.0, mirrored=False, inlier_share=1.0,
                             agreement=1.0, transform=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0))
    assert t.passes(best_case, cosine=1.0)  # at the bound a pair can pass ...
    assert not t.passes(replace(best_case, inliers=t.least_inliers - 1), cosine=1.0)  # ... below it none can
    assert t.least_inliers == min(t.min_inliers, t.agreement_min_inliers)


@pytest.mark.parametrize("pair", ["copy", "mirrored copy", "another print", "another colour"])
def test_least_inliers_changes_no_decision_and_skips_only_below_the_bound(pair):
    copies = {
        "copy": _text(_crop(ORIGINAL, 0.06)),
        "mirrored copy": ImageOps.mirror(_jpeg(ORIGINAL, 60)),
        "another print": photo(print_seed=11, size=(300, 400)),
        "another colour": photo(colour=(28, 40, 92), print_seed=3, size=(300, 400)),
    }
    a, b = image_features(copies[pair], mirrored=True), image_features(ORIGINAL)
    full = verify(a, b)
    cut = verify(a, b, least_inliers=DEFAULT_VERIFY_THRESHOLDS.least_inliers)
    assert DEFAULT_VERIFY_THRESHOLDS.passes(cut, cosine=0.95) == DEFAULT_VERIFY_THRESHOLDS.passes(full, cosine=0.95)
    assert cut == full or (full.inliers < DEFAULT_VERIFY_THRESHOLDS.least_inliers and cut.agreement == cut.colour_shift == 0)
    # A bound no pair reaches: the geometry is kept, the measures after it are skipped.
    skipped = verify(a, b, least_inliers=10_000)
    assert (skipped.inliers, skipped.matches, skipped.mirrored) == (full.inliers, full.matches, full.mirrored)
    assert skipped.edits == () and skipped.transform == () and skipped.changed == skipped.detail == 0.0

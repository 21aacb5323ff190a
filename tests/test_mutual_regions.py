"""Foreground by graph decomposition, visual concepts, and visual prompts of the mutual-knowledge stage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageFilter
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from mmconcepts.errors import MMConceptsError
from mmconcepts.mutual.foreground import (
    SPLIT_VECTORS,
    best_patch_mask,
    box_of,
    centred_singular_vector,
    class_foreground,
    corloc,
    foreground_masks,
    keep_largest_components,
    mask_iou,
    minority_positive,
    normalise_rows,
    second_singular_vector,
    upsample,
)
from mmconcepts.mutual.prompts import (
    RED,
    Ellipse,
    blur_inside,
    blur_outside,
    blur_radius,
    blurred_copy,
    ellipse_mask,
    ellipse_outline,
    fit_ellipse,
    largest_region,
    outline_thickness,
    visual_prompts,
)
from mmconcepts.mutual.settings import AFFINITIES
from mmconcepts.mutual.visual_concepts import METHODS, concept_labels, kmeans_concepts, pca_concepts

# ---------------------------------------------------------------- planted data


def planted_foreground(seed: int, common: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Tokens (4, 8, 8, 32) whose foreground patches (a 4×4 or 4×5 block per image, the minority) share one direction.

    All tokens share a common direction of length ``common`` (large by default, as real ViT tokens have);
    without it the two groups are nearly orthogonal and the paper's second eigenvector of f fᵀ fails.
    """
    rng = np.random.default_rng(seed)
    channels = 32
    shared, fg_dir, bg_dir = (d / np.linalg.norm(d) for d in rng.normal(size=(3, channels)))
    masks = np.zeros((4, 8, 8), dtype=bool)
    for i in range(4):
        y, x = rng.integers(0, 4, size=2)
        masks[i, y : y + 4, x : x + 4 + i % 2] = True
    tokens = common * shared + 2 * np.where(masks[..., None], fg_dir, bg_dir) + 0.3 * rng.normal(size=(4, 8, 8, channels))
    return tokens, masks


MAGNITUDES = np.array([16.0, 8.0, 4.0, 2.0, 1.0])


def planted_parts(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokens (4, 8, 8, 24), foreground (4, 8, 8) and true part ids (-1 on background) of a 5-part object.

    The object is 5 rows × 6 columns at a different place in each image; row k is part k. A part's tokens
    point along its own axis with a strength drawn in [0.5, 1.5] × its magnitude; magnitudes differ by
    factors of 2 so that PCA's components line up with the parts (PCA argmax needs distinct variances).
    """
    rng = np.random.default_rng(seed)
    tokens = np.zeros((4, 8, 8, 24))
    tokens[..., 5:] = 1.0
    parts = np.full((4, 8, 8), -1)
    for i, (y, x) in enumerate([(0, 0), (3, 2), (1, 1), (2, 0)]):
        parts[i, y : y + 5, x : x + 6] = np.arange(5)[:, None]
    fg = parts >= 0
    ids = parts[fg]
    strength = MAGNITUDES[ids] * rng.uniform(0.5, 1.5, size=ids.size)
    part_tokens = tokens[fg]
    part_tokens[np.arange(ids.size), ids] = strength
    tokens[fg] = part_tokens
    tokens += 0.1 * rng.normal(size=tokens.shape)
    return tokens, fg, parts


# ---------------------------------------------------------------- foreground


def test_second_singular_vector_is_the_second_eigenvector_of_the_affinity():
    features = np.random.default_rng(0).normal(size=(30, 10)) + 0.5
    v = second_singular_vector(features)
    f = normalise_rows(features)
    affinity = f @ f.T
    eigenvalues = np.linalg.eigvalsh(affinity)
    second = eigenvalues[-2]
    assert np.isclose(np.linalg.norm(v), 1.0)
    assert np.allclose(affinity @ v, second * v, atol=1e-9)
    assert not np.isclose(second, eigenvalues[-1])


def test_centred_singular_vector_is_the_first_eigenvector_of_the_centred_affinity():
    features = np.random.default_rng(0).normal(size=(30, 10)) + 0.5
    v = centred_singular_vector(features)
    f = normalise_rows(features)
    centred = (f - f.mean(axis=0)) @ (f - f.mean(axis=0)).T
    eigenvalues = np.linalg.eigvalsh(centred)
    assert np.isclose(np.linalg.norm(v), 1.0)
    assert np.allclose(centred @ v, eigenvalues[-1] * v, atol=1e-9)
    assert not np.isclose(eigenvalues[-1], eigenvalues[-2])
    assert np.isclose(v.sum(), 0.0)  # orthogonal to the constant vector, which centring sends to eigenvalue 0
    assert tuple(SPLIT_VECTORS) == AFFINITIES  # the settings' choices are exactly the implemented ones


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_without_a_shared_direction_only_the_centred_affinity_finds_the_objects(seed):
    tokens, masks = planted_foreground(seed, common=0.0)
    centred = class_foreground(tokens, affinity="centred")
    gram = class_foreground(tokens, affinity="gram")
    assert all(mask_iou(pred, true) >= 0.9 for pred, true in zip(centred, masks))
    assert np.mean([mask_iou(pred, true) for pred, true in zip(gram, masks)]) < 0.85
    # with the shared direction the two agree on the planted masks
    tokens, masks = planted_foreground(seed)
    for affinity in AFFINITIES:
        assert all(mask_iou(pred, true) >= 0.9 for pred, true in zip(class_foreground(tokens, affinity=affinity), masks))


def test_second_singular_vector_normalises_rows_and_guards_zero_rows():
    features = np.random.default_rng(1).normal(size=(12, 5))
    scaled = features * np.arange(1, 13)[:, None]
    assert np.allclose(np.abs(second_singular_vector(features)), np.abs(second_singular_vector(scaled)))
    with_zero = np.vstack([features, np.zeros(5)])
    assert np.isfinite(second_singular_vector(with_zero)).all()


def test_minority_positive_sign_rule():
    assert np.array_equal(minority_positive(np.array([1.0, -1.0, -2.0])), [1.0, -1.0, -2.0])
    assert np.array_equal(minority_positive(np.array([1.0, 2.0, -1.0])), [-1.0, -2.0, 1.0])
    # zeros count for neither side: 1 positive vs 2 negatives, kept
    assert np.array_equal(minority_positive(np.array([0.0, 0.0, 3.0, -1.0, -1.0])), [0.0, 0.0, 3.0, -1.0, -1.0])
    # tie: the entry of largest magnitude ends up positive, whatever the input sign
    assert np.array_equal(minority_positive(np.array([1.0, -3.0])), [-1.0, 3.0])
    assert np.array_equal(minority_positive(np.array([-1.0, 3.0])), [-1.0, 3.0])
    assert np.array_equal(minority_positive(np.zeros(3)), np.zeros(3))
    v = np.random.default_rng(2).normal(size=101)
    out = minority_positive(v)
    assert (out > 0).sum() < (out < 0).sum()
    assert np.array_equal(out, minority_positive(-v))


def grid(rows: list[str]) -> np.ndarray:
    """A bool mask from strings of '#' and '.'."""
    return np.array([[c == "#" for c in row] for row in rows])


def test_keep_largest_components_keeps_the_second_only_when_big_enough():
    mask = grid(
        [
            "###.....",
            "###...##",
            ".......#",
            "##.....#",
            "##......",
            "#......#",
        ]
    )
    big = grid(["###....."] + ["###....."] + ["........"] * 4)
    five = grid(["........", "........", "........", "##......", "##......", "#......."])
    four = grid(["........", "......##", ".......#", ".......#", "........", "........"])
    assert np.array_equal(keep_largest_components(mask), big | five)
    assert np.array_equal(keep_largest_components(mask, second_min=6), big)
    assert np.array_equal(keep_largest_components(mask, second_min=None), big)
    without_five = mask & ~five
    assert np.array_equal(keep_largest_components(without_five), big)  # the second (4 patches) is too small
    assert np.array_equal(keep_largest_components(without_five, second_min=4), big | four)
    assert not keep_largest_components(np.zeros((4, 4), dtype=bool)).any()


def test_components_are_four_connected():
    diagonal = grid(["#...", ".#..", "..#.", "...#"])
    assert keep_largest_components(diagonal, second_min=None).sum() == 1
    assert keep_largest_components(diagonal, second_min=None, connectivity=8).sum() == 4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_class_foreground_recovers_planted_masks(seed):
    tokens, masks = planted_foreground(seed)
    found = class_foreground(tokens)
    assert found.shape == masks.shape and found.dtype == bool
    for pred, true in zip(found, masks):
        assert mask_iou(pred, true) >= 0.9


def test_class_foreground_depends_on_tokens_only_through_their_directions():
    tokens, _ = planted_foreground(0)
    scale = np.random.default_rng(3).uniform(0.5, 2.0, size=tokens.shape[:3])[..., None]
    assert np.array_equal(class_foreground(tokens), class_foreground(tokens * scale))


def best_iou(true: np.ndarray, grid: tuple[int, int]) -> float:
    return mask_iou(upsample(best_patch_mask(true, grid), true.shape), true)


def test_best_patch_mask_on_a_hand_case():
    true = np.zeros((4, 4), dtype=bool)
    true[:2, :2] = True  # the whole top-left patch of a 2 × 2 grid
    assert np.array_equal(best_patch_mask(true, (2, 2)), [[True, False], [False, False]])
    true[0, 2] = True  # and a quarter of the top-right patch: taking it too would give 5 / 8, not 4 / 5
    assert np.array_equal(best_patch_mask(true, (2, 2)), [[True, False], [False, False]])
    assert best_iou(true, (2, 2)) == pytest.approx(4 / 5)
    true[1, 2:] = True  # now three quarters of it: 7 / 8 with it, 4 / 7 without
    assert np.array_equal(best_patch_mask(true, (2, 2)), [[True, True], [False, False]])
    assert not best_patch_mask(np.zeros((4, 4), dtype=bool), (2, 2)).any()


@pytest.mark.parametrize("seed", range(6))
def test_best_patch_mask_is_the_best_of_every_patch_mask(seed):
    """Against all 2⁹ masks of a 3 × 3 grid on 7 × 8 pixels (patches of unequal sizes)."""
    rng = np.random.default_rng(seed)
    true = rng.random((7, 8)) < rng.uniform(0.1, 0.6)
    best = 0.0
    for bits in range(2**9):
        patches = np.array([(bits >> i) & 1 for i in range(9)], dtype=bool).reshape(3, 3)
        best = max(best, mask_iou(upsample(patches, true.shape), true))
    assert best_iou(true, (3, 3)) == pytest.approx(best)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_image_foreground_reads_each_image_alone(seed):
    tokens, masks = planted_foreground(seed)
    labels = np.zeros(4, dtype=int)
    per_image = foreground_masks(tokens, labels, "image")
    # a quarter of the rows that a class-wide split averages over: a noisy patch or two may flip
    assert all(mask_iou(pred, true) >= 0.85 for pred, true in zip(per_image, masks))
    changed = tokens.copy()
    changed[1:] = np.random.default_rng(seed).normal(size=changed[1:].shape)  # the other images become noise
    assert np.array_equal(foreground_masks(changed, labels, "image")[0], per_image[0])
    assert np.array_equal(per_image[2], class_foreground(tokens[2:3])[0])


def test_foreground_masks_decompose_each_class_apart():
    tokens, _ = planted_foreground(0)
    labels = np.array([0, 1, 0, 1])
    found = foreground_masks(tokens, labels, "class")
    assert np.array_equal(found[[0, 2]], class_foreground(tokens[[0, 2]]))
    assert np.array_equal(found[[1, 3]], class_foreground(tokens[[1, 3]]))
    with pytest.raises(MMConceptsError, match="'class' or 'image'"):
        foreground_masks(tokens, labels, "synset")


def test_upsample_by_index_mapping():
    mask = np.array([[True, False], [False, True]])
    expected = np.kron(mask, np.ones((2, 2), dtype=bool))
    assert np.array_equal(upsample(mask, (4, 4)), expected)
    odd = upsample(np.array([[True, False, True], [False, True, False]]), (5, 7))
    # rows 0-2 come from patch row 0, rows 3-4 from row 1; columns 0-2 / 3-4 / 5-6 from patch columns 0 / 1 / 2
    assert np.array_equal(odd[0], [True, True, True, False, False, True, True])
    assert np.array_equal(odd[2], odd[0])
    assert np.array_equal(odd[3], [False, False, False, True, True, False, False])
    assert odd.shape == (5, 7) and odd.dtype == bool
    column = upsample(np.array([[True], [False], [True]]), (4, 1))
    assert np.array_equal(column[:, 0], [True, True, False, True])  # pixel row y takes patch row y * 3 // 4


def test_mask_iou_hand_cases():
    a = grid(["##..", "##..", "....", "...."])
    b = grid([".##.", ".##.", "....", "...."])
    assert mask_iou(a, b) == pytest.approx(2 / 6)
    assert mask_iou(a, a) == 1.0
    empty = np.zeros((4, 4), dtype=bool)
    assert mask_iou(empty, empty) == 1.0
    assert mask_iou(a, empty) == 0.0


def test_box_of_and_corloc():
    true = grid(["......", ".###..", ".###..", "......"])
    assert box_of(true) == (1, 1, 3, 4)
    assert box_of(np.zeros((3, 3), dtype=bool)) is None
    hit = grid(["......", ".##...", ".###..", "......"])  # same box as the true mask
    near = grid(["......", "..###.", "..###.", "......"])  # box IoU 4/8 = 0.5
    miss = grid(["....##", "......", "......", "......"])
    empty = np.zeros_like(true)
    assert corloc([hit, near, miss, empty], [true] * 4) == pytest.approx(0.5)
    assert corloc([near], [true], threshold=0.51) == 0.0
    assert corloc(np.stack([hit, miss]), np.stack([true, true])) == 0.5


# ---------------------------------------------------------------- visual concepts


@pytest.mark.parametrize("method", METHODS)
def test_concepts_recover_planted_parts_consistently_across_images(method):
    tokens, fg, parts = planted_parts(0)
    labels = concept_labels(tokens, fg, method)
    assert np.array_equal(labels == -1, ~fg)
    assert adjusted_rand_score(parts[fg], labels[fg]) >= 0.9
    # the same part gets the same concept id in every image, and different parts different ids
    ids = [[np.bincount(labels[i][parts[i] == k]).argmax() for i in range(4)] for k in range(5)]
    assert all(len(set(row)) == 1 for row in ids)
    assert len({row[0] for row in ids}) == 5


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pca_and_kmeans_on_flat_features(seed):
    tokens, fg, parts = planted_parts(seed)
    features, truth = tokens[fg], parts[fg]
    assert adjusted_rand_score(truth, pca_concepts(features)) >= 0.9
    assert adjusted_rand_score(truth, kmeans_concepts(features, seed=seed)) >= 0.9
    assert set(np.unique(pca_concepts(features, n=3))) <= {0, 1, 2}


def test_pca_concepts_argmax_of_min_max_scaled_components():
    features = np.random.default_rng(6).gamma(1.0, size=(60, 6))  # skewed: components have lopsided ranges
    scores = PCA(n_components=3, svd_solver="full").fit_transform(features)
    scaled = (scores - scores.min(axis=0)) / (scores.max(axis=0) - scores.min(axis=0))
    labels = pca_concepts(features, n=3)
    assert np.array_equal(labels, scaled.argmax(axis=1))
    assert not np.array_equal(labels, scores.argmax(axis=1))  # the scaling matters on this data


def test_concepts_are_deterministic():
    tokens, fg, _ = planted_parts(4)
    features = tokens[fg] + np.random.default_rng(5).normal(scale=3.0, size=tokens[fg].shape)  # overlapping clusters
    assert np.array_equal(kmeans_concepts(features, seed=7), kmeans_concepts(features, seed=7))
    assert np.array_equal(concept_labels(tokens, fg, "pca"), concept_labels(tokens, fg, "pca"))


def test_concept_errors():
    tokens, fg, _ = planted_parts(0)
    with pytest.raises(MMConceptsError, match=r"'nmf'.*\('pca', 'kmeans'\)"):
        concept_labels(tokens, fg, "nmf")
    few = np.zeros_like(fg)
    few[0, 0, :4] = True
    with pytest.raises(MMConceptsError, match="at least 5 foreground patches, got 4"):
        concept_labels(tokens, few, "kmeans")
    with pytest.raises(MMConceptsError, match="does not match"):
        concept_labels(tokens, fg[:, :7], "pca")
    with pytest.raises(MMConceptsError, match="at least 5"):
        pca_concepts(np.ones((4, 8)))
    with pytest.raises(MMConceptsError, match="positive integer"):
        kmeans_concepts(np.ones((10, 8)), n=0)


# ---------------------------------------------------------------- regions and ellipses


def test_largest_region():
    labels = np.array(
        [
            [2, 2, -1, 0],
            [2, -1, 2, 2],
            [-1, -1, 2, 2],
            [1, -1, 2, -1],
        ]
    )
    region = largest_region(labels, 2)
    assert region.sum() == 5 and region[1, 2] and not region[0, 0]
    assert largest_region(labels, 3) is None
    assert largest_region(labels, 1).sum() == 1


def test_ellipse_of_a_rectangle():
    mask = np.zeros((40, 60), dtype=bool)
    mask[10:20, 20:50] = True
    ellipse = fit_ellipse(mask)
    assert (ellipse.cy, ellipse.cx) == pytest.approx((14.5, 34.5))
    assert ellipse.angle == pytest.approx(0.0, abs=1e-9)
    assert ellipse.rx > ellipse.ry
    inside = ellipse_mask(ellipse, mask.shape)
    assert inside[mask].all()
    assert inside.sum() < 2 * mask.sum()


def test_ellipse_of_a_tall_rectangle_and_a_disk():
    tall = np.zeros((40, 40), dtype=bool)
    tall[5:35, 15:22] = True
    ellipse = fit_ellipse(tall)
    assert ellipse.angle == pytest.approx(0.0, abs=1e-9) and ellipse.ry > ellipse.rx
    yy, xx = np.mgrid[:50, :60]
    disk = (yy - 25) ** 2 + (xx - 30) ** 2 <= 100
    ellipse = fit_ellipse(disk)
    assert (ellipse.cy, ellipse.cx) == pytest.approx((25, 30))
    assert ellipse.rx == pytest.approx(10, abs=0.6) and ellipse.ry == pytest.approx(10, abs=0.6)
    inside = ellipse_mask(ellipse, disk.shape)
    assert inside[disk].all() and mask_iou(inside, disk) >= 0.9


@pytest.mark.parametrize(
    ("tilt", "angle", "major_along_x"),
    [(math.pi / 6, math.pi / 6, True), (-math.pi / 6, -math.pi / 6, True), (math.pi / 3, -math.pi / 6, False)],
)
def test_ellipse_of_a_tilted_region(tilt, angle, major_along_x):
    """The major axis at ``tilt``; angles are folded into [-π/4, π/4), swapping the semi-axes past π/4."""
    yy, xx = np.mgrid[:80, :80]
    u = (xx - 40) * math.cos(tilt) + (yy - 40) * math.sin(tilt)
    v = -(xx - 40) * math.sin(tilt) + (yy - 40) * math.cos(tilt)
    region = (u / 30) ** 2 + (v / 8) ** 2 <= 1
    ellipse = fit_ellipse(region)
    assert ellipse.angle == pytest.approx(angle, abs=0.02)
    major, minor = (ellipse.rx, ellipse.ry) if major_along_x else (ellipse.ry, ellipse.rx)
    assert major == pytest.approx(30, rel=0.05) and minor == pytest.approx(8, rel=0.1)
    assert ellipse_mask(ellipse, region.shape)[region].all()


def test_ellipse_semi_axes_are_twice_the_standard_deviations():
    """A thin ring is already covered by its moment ellipse (radius·√2), so no enlarging hides the factor 2."""
    yy, xx = np.mgrid[:61, :61]
    distance = np.hypot(yy - 30, xx - 30)
    ring = (distance >= 19.5) & (distance <= 20.5)
    ellipse = fit_ellipse(ring)
    sigma = math.sqrt(np.mean((xx[ring] - 30.0) ** 2))
    assert ellipse.rx == pytest.approx(2 * sigma, rel=1e-6) and ellipse.ry == pytest.approx(2 * sigma, rel=1e-6)
    assert ellipse.rx == pytest.approx(20 * math.sqrt(2), rel=0.02)


def test_single_pixel_ellipse_is_visible():
    mask = np.zeros((9, 9), dtype=bool)
    mask[4, 4] = True
    ellipse = fit_ellipse(mask)
    assert (ellipse.ry, ellipse.rx) == (1.5, 1.5)
    assert ellipse_outline(ellipse, (9, 9), 1).sum() > 4


def test_ellipse_outline_is_a_band_on_the_boundary():
    ellipse = Ellipse(cy=20, cx=30, ry=10, rx=15, angle=0.0)
    outline = ellipse_outline(ellipse, (40, 60), 1)
    assert outline[10, 30] and outline[30, 30] and outline[20, 15] and outline[20, 45]
    assert not outline[20, 30] and not outline[5, 30]
    assert outline[:, 30].sum() == 2  # one pixel thick where the boundary crosses a column
    thick = ellipse_outline(ellipse, (40, 60), 3)
    assert thick[:, 30].sum() == 6 and (outline & ~thick).sum() == 0


def test_sizes_scale_with_the_shorter_side():
    assert outline_thickness((224, 224)) == 1
    assert outline_thickness((64, 64)) == 1
    assert outline_thickness((448, 900)) == 2
    assert blur_radius((224, 224)) == pytest.approx(2.0)
    assert blur_radius((448, 1000)) == pytest.approx(4.0)


# ---------------------------------------------------------------- prompts and blur


def noise_image(seed: int = 0, size: tuple[int, int] = (64, 80)) -> Image.Image:
    """A random RGB image of (H, W), so that blur and grayscale change nearly every pixel."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_visual_prompts_change_only_what_they_should():
    image = noise_image()
    region = np.zeros((8, 10), dtype=bool)
    region[2:5, 3:7] = True
    prompts = visual_prompts(image, region)
    assert len(prompts) == 3
    assert all(p.size == image.size and p.mode == "RGB" for p in prompts)
    size = (image.height, image.width)
    ellipse = fit_ellipse(upsample(region, size))
    inside = ellipse_mask(ellipse, size)
    outline = ellipse_outline(ellipse, size, 1)
    assert ellipse_mask(ellipse, size)[upsample(region, size)].all()
    original = np.asarray(image)
    red, gray, blur = (np.asarray(p) for p in prompts)
    for prompt in (red, gray, blur):
        assert (prompt[outline] == RED).all()
        assert np.array_equal(prompt[inside & ~outline], original[inside & ~outline])
    assert np.array_equal(red[~outline], original[~outline])
    outside = ~inside & ~outline
    assert (gray[outside][:, 0] == gray[outside][:, 1]).all() and (gray[outside][:, 1] == gray[outside][:, 2]).all()
    assert np.array_equal(gray[outside][:, 0], np.asarray(image.convert("L"))[outside])
    blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(blur_radius(size))))
    assert np.array_equal(blur[outside], blurred[outside])
    assert (blur[outside] != original[outside]).any(axis=1).mean() > 0.9


def test_visual_prompts_accept_other_modes_and_pixel_regions():
    image = noise_image(1, (32, 32)).convert("L")
    region = np.zeros((32, 32), dtype=bool)
    region[10:20, 12:16] = True
    prompts = visual_prompts(image, region)
    assert all(p.mode == "RGB" and p.size == (32, 32) for p in prompts)


def test_blur_helpers_keep_the_kept_pixels():
    image = noise_image(2)
    keep = np.zeros((64, 80), dtype=bool)
    keep[10:30, 20:60] = True
    original = np.asarray(image)
    blurred = np.asarray(blurred_copy(image))
    outside = np.asarray(blur_outside(image, keep))
    assert np.array_equal(outside[keep], original[keep])
    assert np.array_equal(outside[~keep], blurred[~keep])
    inside = np.asarray(blur_inside(image, keep))
    assert np.array_equal(inside[~keep], original[~keep])
    assert np.array_equal(inside[keep], blurred[keep])
    assert (inside[keep] != original[keep]).any(axis=1).mean() > 0.9
    shared = blurred_copy(image, radius=5.0)
    assert np.array_equal(np.asarray(blur_inside(image, keep, blurred=shared))[keep], np.asarray(shared)[keep])


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: second_singular_vector(np.ones((1, 4))), "at least 2 patches"),
        (lambda: second_singular_vector(np.ones((5, 1))), "at least 2 feature channels"),
        (lambda: second_singular_vector(np.ones(5)), r"\(M, C\) matrix"),
        (lambda: second_singular_vector(np.full((3, 3), np.nan)), "NaN"),
        (lambda: class_foreground(np.ones((4, 4, 8))), r"\(B, h, w, C\)"),
        (lambda: class_foreground(np.ones((1, 4, 4, 8)), affinity="laplacian"), "affinity must be one of gram, centred, not 'laplacian'"),
        (lambda: centred_singular_vector(np.ones((1, 4))), "at least 2 patches"),
        (lambda: keep_largest_components(np.full((3, 3), 2)), "boolean"),
        (lambda: keep_largest_components(np.ones((3, 3), dtype=bool), connectivity=6), "connectivity"),
        (lambda: upsample(np.ones((2, 2), dtype=bool), (0, 4)), "positive integers"),
        (lambda: upsample(np.ones((2, 2), dtype=bool), (4,)), "positive integers"),
        (lambda: mask_iou(np.ones((2, 2), dtype=bool), np.ones((2, 3), dtype=bool)), "differ in shape"),
        (lambda: corloc([np.ones((2, 2), dtype=bool)], []), "1 predicted masks but 0"),
        (lambda: corloc([], []), "at least one image"),
        (lambda: corloc([np.ones((2, 2), dtype=bool)], [np.zeros((2, 2), dtype=bool)]), "true mask of image 0 is empty"),
        (lambda: corloc([np.ones((2, 2), dtype=bool)], [np.ones((2, 2), dtype=bool)], threshold=0), "threshold"),
        (lambda: largest_region(np.zeros((3, 3)), 0), "integer"),
        (lambda: fit_ellipse(np.zeros((3, 3), dtype=bool)), "empty region"),
        (lambda: ellipse_outline(Ellipse(1, 1, 1, 1, 0.0), (3, 3), 0), "thickness"),
        (lambda: visual_prompts(noise_image(), np.zeros((8, 8), dtype=bool)), "region of a visual prompt is empty"),
        (lambda: visual_prompts(np.zeros((8, 8, 3)), np.ones((8, 8), dtype=bool)), "PIL image"),
        (lambda: blur_outside(noise_image(), np.ones((8, 8), dtype=bool)), "does not match"),
        (lambda: blur_inside(noise_image(), np.ones((64, 80), dtype=bool), blurred=noise_image(0, (8, 8))), "blurred copy"),
        (lambda: blurred_copy(noise_image(), radius=-1.0), "blur radius"),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(MMConceptsError, match=message):
        call()

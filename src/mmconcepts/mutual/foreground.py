"""The prominent ("foreground") patches of a class, by the paper's graph decomposition, and how to score them.

The affinity of the patch tokens is A = f fᵀ with f the L2-normalised tokens of all images of one class
stacked together. Its eigenvector with the second largest eigenvalue (the second left singular vector
of f, no Laplacian, no centring, as in the authors' code) splits the patches in two; the smaller side is
the foreground. Each image then keeps its largest connected component, plus the second largest when it
is big enough. The authors' optional dense CRF is not used (it moves accuracy by at most 0.13 points).

That rule assumes the first eigenvector is the tokens' shared direction m, leaving the largest contrast
among the patches to the second. It is not quite: with f = m + d (d of mean zero, covariance C) the first
eigenvector maximises M (m·u)² + uᵀCu, the shared direction tilted toward the largest contrast. Unless m
dominates, it takes part of that contrast, and the second eigenvector mixes the rest with the next
contrast (a background's texture, say). The ``"centred"`` affinity (f − f̄)(f − f̄)ᵀ removes m exactly,
and its first eigenvector (the tokens' first principal component) is the largest contrast.

Masks are boolean numpy arrays; a "patch grid" is (h, w), an image is (H, W). Boxes are
``(y0, x0, y1, x1)`` in pixels with exclusive ends, so a box's area is ``(y1 - y0) * (x1 - x0)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from mmconcepts.errors import MMConceptsError

CONNECTIVITY = (4, 8)


def check_mask(mask: np.ndarray, name: str = "mask", ndim: int = 2) -> np.ndarray:
    """``mask`` as a bool array of ``ndim`` dimensions; 0/1 numbers are accepted, anything else raises."""
    array = np.asarray(mask)
    if array.ndim != ndim:
        raise MMConceptsError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    if array.dtype == bool:
        return array
    if array.dtype.kind not in "biuf" or not np.isin(array, (0, 1)).all():
        raise MMConceptsError(f"{name} must be boolean (or only 0 and 1), got dtype {array.dtype}")
    return array.astype(bool)


def check_features(features: np.ndarray, name: str = "features") -> np.ndarray:
    """``features`` as a finite float64 (M, C) matrix."""
    array = np.asarray(features)
    if array.ndim != 2:
        raise MMConceptsError(f"{name} must be a (M, C) matrix, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise MMConceptsError(f"{name} must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise MMConceptsError(f"{name} contains NaN or infinite values")
    return array


def normalise_rows(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero instead of dividing by zero."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.where(norms > 0, norms, 1.0)


def _decomposable_rows(features: np.ndarray) -> np.ndarray:
    """The (M, C) features checked (M ≥ 2 patches) and L2-normalised per row."""
    f = check_features(features)
    if f.shape[0] < 2:
        raise MMConceptsError(f"the graph decomposition needs at least 2 patches, got {f.shape[0]}")
    return normalise_rows(f)


def second_singular_vector(features: np.ndarray) -> np.ndarray:
    """U[:, 1] of the SVD of the row-normalised (M, C) features: the eigenvector of f fᵀ with the second largest eigenvalue.

    Its sign is whatever LAPACK returns; ``minority_positive`` fixes it. M ≥ 2 and C ≥ 2 are required
    (with one column f fᵀ has rank 1 and the second eigenvector is not defined).
    """
    f = _decomposable_rows(features)
    if f.shape[1] < 2:
        raise MMConceptsError(f"the graph decomposition needs at least 2 feature channels, got {f.shape[1]}")
    u, _, _ = np.linalg.svd(f, full_matrices=False)
    return u[:, 1]


def centred_singular_vector(features: np.ndarray) -> np.ndarray:
    """U[:, 0] of the SVD of the row-normalised (M, C) features minus their mean row: the eigenvector of the
    centred affinity (f − f̄)(f − f̄)ᵀ with the largest eigenvalue. Sign as LAPACK returns it; M ≥ 2 required."""
    f = _decomposable_rows(features)
    u, _, _ = np.linalg.svd(f - f.mean(axis=0), full_matrices=False)
    return u[:, 0]


SPLIT_VECTORS = {"gram": second_singular_vector, "centred": centred_singular_vector}


def minority_positive(v: np.ndarray) -> np.ndarray:
    """``v`` or ``-v``, whichever has fewer entries > 0 than entries < 0 (zeros count for neither side).

    Exactly: with p = #(v > 0) and n = #(v < 0), return -v if p > n, v if p < n. On a tie (p == n)
    the sign is chosen so that the entry of largest magnitude (the first one, on equal magnitudes) is
    positive, which makes the result independent of the sign the SVD happened to return. An all-zero
    vector is returned unchanged. After the call, #(> 0) ≤ #(< 0) always holds.
    """
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 1:
        raise MMConceptsError(f"the vector must be one-dimensional, got shape {v.shape}")
    positive, negative = int((v > 0).sum()), int((v < 0).sum())
    if positive > negative:
        return -v
    if positive < negative or not v.any():
        return v.copy()
    return v.copy() if v[np.argmax(np.abs(v))] > 0 else -v


def _structure(connectivity: int) -> np.ndarray:
    """scipy's neighbourhood for 4- (edges) or 8-connectivity (edges and corners)."""
    if connectivity not in CONNECTIVITY:
        raise MMConceptsError(f"connectivity must be one of {CONNECTIVITY}, not {connectivity!r}")
    return ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)


def ranked_components(mask: np.ndarray, connectivity: int = 4) -> list[np.ndarray]:
    """The connected components of a 2-D mask, largest first; equal sizes keep raster-scan order of their first pixel."""
    labelled, count = ndimage.label(check_mask(mask), structure=_structure(connectivity))
    if count == 0:
        return []
    sizes = np.bincount(labelled.ravel(), minlength=count + 1)[1:]
    order = np.argsort(-sizes, kind="stable")
    return [labelled == index + 1 for index in order]


def keep_largest_components(mask: np.ndarray, second_min: int | None = 5, connectivity: int = 4) -> np.ndarray:
    """The largest connected component of ``mask``, plus the second largest if it has ≥ ``second_min`` patches.

    Connectivity is 4 (patches sharing an edge) by default: two patches that only touch at a corner are
    not one region, which keeps a diagonal chain of noisy patches from joining the object. Note that the
    authors' ``skimage.measure.label`` defaults to 8; pass ``connectivity=8`` to follow it. Ties in size
    are broken by raster-scan order. ``second_min=None`` keeps only the largest. An empty mask stays empty.
    """
    components = ranked_components(mask, connectivity)
    keep = np.zeros(np.shape(mask), dtype=bool)
    if components:
        keep |= components[0]
    if len(components) > 1 and second_min is not None and components[1].sum() >= second_min:
        keep |= components[1]
    return keep


def _split_vector(affinity: str):
    if affinity not in SPLIT_VECTORS:
        raise MMConceptsError(f"the foreground affinity must be one of {', '.join(SPLIT_VECTORS)}, not {affinity!r}")
    return SPLIT_VECTORS[affinity]


def class_foreground(tokens: np.ndarray, second_min: int | None = 5, connectivity: int = 4, affinity: str = "gram") -> np.ndarray:
    """Foreground masks (B, h, w) of all B images of one class, from their patch tokens (B, h, w, C).

    The tokens of all images are decomposed together, so one class-wide split decides what is
    foreground; the connected-component clean-up is then done per image. ``affinity``: ``"gram"``
    (the paper's f fᵀ, second eigenvector) or ``"centred"`` (first eigenvector of the centred affinity).
    """
    split = _split_vector(affinity)
    tokens = np.asarray(tokens)
    if tokens.ndim != 4:
        raise MMConceptsError(f"tokens must have shape (B, h, w, C), got {tokens.shape}")
    b, h, w, c = tokens.shape
    if min(b, h, w, c) < 1:
        raise MMConceptsError(f"tokens must not have an empty dimension, got shape {tokens.shape}")
    vector = minority_positive(split(tokens.reshape(b * h * w, c)))
    raw = (vector > 0).reshape(b, h, w)
    return np.stack([keep_largest_components(m, second_min, connectivity) for m in raw])


def class_groups(labels: np.ndarray):
    """``(class, indices of its images)`` for each class present, in class order."""
    for c in np.unique(labels):
        yield c, np.flatnonzero(labels == c)


def foreground_masks(
    tokens: np.ndarray, labels: np.ndarray, scope: str = "class", second_min: int | None = 5, connectivity: int = 4, affinity: str = "gram"
) -> np.ndarray:
    """Foreground masks (N, h, w) of N images from their tokens (N, h, w, C): one decomposition of each
    class's stacked tokens (``scope="class"``, the authors' code; ``labels`` give the classes) or one per
    image (``"image"``, the paper's text), with the given ``affinity`` (see ``class_foreground``)."""
    labels = np.asarray(labels)
    if scope not in ("class", "image"):
        raise MMConceptsError(f"the foreground scope must be 'class' or 'image', not {scope!r}")
    if labels.shape != (len(tokens),):
        raise MMConceptsError(f"got {len(tokens)} images' tokens but labels of shape {labels.shape}")
    groups = [idx for _, idx in class_groups(labels)] if scope == "class" else [[i] for i in range(len(tokens))]
    masks = np.zeros(np.shape(tokens)[:3], dtype=bool)
    for idx in groups:
        masks[idx] = class_foreground(tokens[idx], second_min, connectivity, affinity)
    return masks


def _positive_int(value: object) -> bool:
    """Whether ``value`` is an integer ≥ 1 (bools excluded)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` as a pair of positive ints (H, W)."""
    if not isinstance(size, (tuple, list)) or len(size) != 2 or not all(_positive_int(s) for s in size):
        raise MMConceptsError(f"size must be two positive integers (H, W), got {size!r}")
    return int(size[0]), int(size[1])


def upsample(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour upsampling of a patch-grid mask (h, w) to pixels (H, W).

    Pixel row y takes patch row ``y * h // H`` (likewise for columns), the patch whose span contains it
    (OpenCV's INTER_NEAREST rule): exact blocks when H is a multiple of h, otherwise every patch covers
    ⌊H/h⌋ or ⌈H/h⌉ rows. It also works for H < h (then it subsamples).
    """
    mask = check_mask(mask)
    height, width = check_size(size)
    rows = np.arange(height) * mask.shape[0] // height
    cols = np.arange(width) * mask.shape[1] // width
    return mask[rows[:, None], cols[None, :]]


def _same_shape(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as bool, raising if their shapes differ."""
    pred, true = check_mask(pred, "predicted mask"), check_mask(true, "true mask")
    if pred.shape != true.shape:
        raise MMConceptsError(f"the predicted mask {pred.shape} and the true mask {true.shape} differ in shape")
    return pred, true


def mask_iou(pred: np.ndarray, true: np.ndarray) -> float:
    """Intersection over union of two masks; 1.0 when both are empty (they agree perfectly)."""
    pred, true = _same_shape(pred, true)
    union = np.logical_or(pred, true).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(pred, true).sum() / union)


def best_patch_mask(true: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The mask of whole patches of ``grid`` (h, w) whose IoU with ``true`` (H, W) is highest.

    A patch mask is scored as ``upsample`` draws it. The best one takes the patches in order of the share of
    their pixels inside the object: adding a patch raises the IoU exactly when that share exceeds the IoU so
    far, so some prefix of that order is optimal, and every prefix is tried (the shortest of equal ones wins).
    Its IoU is the ceiling of any patch-level foreground at this grid; an empty ``true`` gives an empty mask.
    """
    true = check_mask(true, "true mask")
    h, w = check_size(grid)
    rows = np.arange(true.shape[0]) * h // true.shape[0]
    cols = np.arange(true.shape[1]) * w // true.shape[1]
    patch = (rows[:, None] * w + cols[None, :]).ravel()
    area = np.bincount(patch, minlength=h * w)
    inside = np.bincount(patch, weights=true.ravel(), minlength=h * w)
    order = np.argsort(-(inside / np.maximum(area, 1)), kind="stable")
    mask = np.zeros(h * w, dtype=bool)
    if true.any():
        intersection, predicted = np.cumsum(inside[order]), np.cumsum(area[order])
        mask[order[: int(np.argmax(intersection / (true.sum() + predicted - intersection))) + 1]] = True
    return mask.reshape(h, w)


def box_of(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The bounding box ``(y0, x0, y1, x1)`` of a mask's pixels (ends exclusive), None if the mask is empty."""
    mask = check_mask(mask)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two boxes with exclusive ends."""
    height = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    width = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = height * width
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def corloc(pred_masks: Sequence[np.ndarray], true_masks: Sequence[np.ndarray], threshold: float = 0.5) -> float:
    """CorLoc: the fraction of images whose predicted box has IoU ≥ ``threshold`` with the true box.

    Boxes are the bounding boxes of the whole masks (one box per image, all objects together). An empty
    prediction counts as a miss; an empty true mask raises, since there is nothing to localise.
    """
    if len(pred_masks) != len(true_masks):
        raise MMConceptsError(f"corloc got {len(pred_masks)} predicted masks but {len(true_masks)} true masks")
    if len(pred_masks) == 0:
        raise MMConceptsError("corloc needs at least one image")
    if not 0 < threshold <= 1:
        raise MMConceptsError(f"the corloc threshold must be in (0, 1], got {threshold}")
    hits = 0
    for index, (pred, true) in enumerate(zip(pred_masks, true_masks)):
        pred, true = _same_shape(pred, true)
        true_box, pred_box = box_of(true), box_of(pred)
        if true_box is None:
            raise MMConceptsError(f"the true mask of image {index} is empty: corloc needs an object in every image")
        hits += pred_box is not None and box_iou(pred_box, true_box) >= threshold
    return hits / len(pred_masks)

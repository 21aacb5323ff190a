"""Visual prompts around a concept's region (Shtedritski et al.), and blurring for Deletion/Insertion.

A concept is shown to CLIP as three images around the ellipse of its largest region: a red ellipse;
the red ellipse with everything outside it in grayscale; the red ellipse with everything outside it
blurred. Regions come at patch resolution (h, w) and are upsampled to the image with
``foreground.upsample``. Images are PIL RGB images (other modes are converted); outputs keep the size.

Sizes follow the authors' 224-px setting and scale with the image's shorter side S:
- outline thickness ``max(1, round(S / 224))`` px (OpenCV thickness 1 at 224 px);
- blur: a Gaussian of standard deviation ``2.0 * S / 224`` (PIL's GaussianBlur radius is the standard
  deviation), the sigma OpenCV derives for the authors' 11×11 kernel with sigma 0:
  0.3·((11 − 1)/2 − 1) + 0.8 = 2.0. PIL does not truncate the kernel at 11 taps; the difference is tiny.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageFilter

from mmconcepts.errors import MMConceptsError
from mmconcepts.mutual.foreground import check_mask, check_size, keep_largest_components, upsample

RED = (255, 0, 0)
REFERENCE_SIDE = 224
REFERENCE_SIGMA = 0.3 * ((11 - 1) * 0.5 - 1) + 0.8  # OpenCV's sigma for an 11×11 kernel given sigma 0
MIN_SEMI_AXIS = 1.5


@dataclass(frozen=True)
class Ellipse:
    """An ellipse in pixel coordinates (row y down, column x right).

    The semi-axis ``rx`` lies along the direction at ``angle`` radians from the image's x axis, turning
    towards +y; ``ry`` is perpendicular to it. ``fit_ellipse`` returns angles in [-π/4, π/4), so an
    axis-aligned ellipse has angle 0 with ``rx`` horizontal and ``ry`` vertical.
    """

    cy: float
    cx: float
    ry: float
    rx: float
    angle: float


def largest_region(labels: np.ndarray, concept: int) -> np.ndarray | None:
    """The concept's largest 4-connected region in one image's (h, w) concept labels, None if absent.

    The authors take the largest OpenCV outer contour (8-connected); 4-connectivity matches the
    foreground clean-up here. Equal sizes go to the region met first in raster order.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "iu":
        raise MMConceptsError(f"concept labels must be a 2-D integer array, got shape {labels.shape} and dtype {labels.dtype}")
    mask = labels == concept
    if not mask.any():
        return None
    return keep_largest_components(mask, second_min=None)


def _radius2(ellipse: Ellipse, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """(u/rx)² + (v/ry)² of points in the ellipse's own axes: ≤ 1 inside. Shared so fit and mask agree exactly."""
    dy, dx = ys - ellipse.cy, xs - ellipse.cx
    cos, sin = math.cos(ellipse.angle), math.sin(ellipse.angle)
    u = dx * cos + dy * sin
    v = -dx * sin + dy * cos
    return (u / ellipse.rx) ** 2 + (v / ellipse.ry) ** 2


def _axis_angle(vector: np.ndarray) -> float:
    """Angle of an (x, y) direction, folded into [-π/2, π/2) since a direction and its opposite are one axis."""
    angle = math.atan2(float(vector[1]), float(vector[0]))
    return (angle + math.pi / 2) % math.pi - math.pi / 2


def fit_ellipse(mask: np.ndarray) -> Ellipse:
    """The moment ellipse of a pixel mask (H, W), enlarged if needed so that it covers every pixel of the region.

    Centre = mean pixel position; axes = eigenvectors of the pixel covariance; semi-axes =
    2·sqrt(eigenvalue) (exactly the region for a filled disc or ellipse), at least 1.5 px so a tiny
    region still gets a visible ellipse. If some region pixel centre is still outside (corners of a
    rectangle, an L shape), both semi-axes are scaled by the same factor until it is inside. The
    authors fit OpenCV's least-squares ellipse to the region's contour; moments avoid OpenCV, and the
    covering step keeps the whole concept inside the unblurred, coloured part of the prompts.
    """
    mask = check_mask(mask)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise MMConceptsError("cannot fit an ellipse to an empty region")
    ys, xs = ys.astype(np.float64), xs.astype(np.float64)
    values, vectors = np.linalg.eigh(np.cov(np.stack([xs, ys]), bias=True))
    axes = np.maximum(2.0 * np.sqrt(np.clip(values, 0.0, None)), MIN_SEMI_AXIS)
    angle, rx, ry = _axis_angle(vectors[:, 0]), float(axes[0]), float(axes[1])
    if angle >= math.pi / 4:
        angle, rx, ry = angle - math.pi / 2, ry, rx
    elif angle < -math.pi / 4:
        angle, rx, ry = angle + math.pi / 2, ry, rx
    ellipse = Ellipse(cy=float(ys.mean()), cx=float(xs.mean()), ry=ry, rx=rx, angle=angle)
    reach = math.sqrt(float(_radius2(ellipse, ys, xs).max()))
    if reach > 1.0:
        scale = reach * (1.0 + 1e-9)
        ellipse = replace(ellipse, ry=ry * scale, rx=rx * scale)
    return ellipse


def ellipse_mask(ellipse: Ellipse, size: tuple[int, int]) -> np.ndarray:
    """Pixels (H, W) whose centres lie inside the ellipse or on it."""
    height, width = check_size(size)
    if ellipse.rx <= 0 or ellipse.ry <= 0:
        return np.zeros((height, width), dtype=bool)
    ys = np.arange(height, dtype=np.float64)[:, None]
    xs = np.arange(width, dtype=np.float64)[None, :]
    return _radius2(ellipse, ys, xs) <= 1.0


def ellipse_outline(ellipse: Ellipse, size: tuple[int, int], thickness_px: float) -> np.ndarray:
    """Pixels (H, W) of a band ``thickness_px`` wide centred on the ellipse's boundary.

    The band lies between the ellipses with semi-axes grown and shrunk by half the thickness: exactly
    that wide at the four vertices, close to it elsewhere.
    """
    if not thickness_px > 0:
        raise MMConceptsError(f"the outline thickness must be positive, got {thickness_px!r}")
    half = thickness_px / 2
    outer = ellipse_mask(replace(ellipse, ry=ellipse.ry + half, rx=ellipse.rx + half), size)
    inner = ellipse_mask(replace(ellipse, ry=ellipse.ry - half, rx=ellipse.rx - half), size)
    return outer & ~inner


def _shorter_side(size: tuple[int, int]) -> int:
    """The shorter side of an (H, W) size."""
    return min(check_size(size))


def outline_thickness(size: tuple[int, int]) -> int:
    """Outline thickness in px for an image of (H, W): 1 px at a 224-px shorter side, scaled, at least 1."""
    return max(1, round(_shorter_side(size) / REFERENCE_SIDE))


def blur_radius(size: tuple[int, int]) -> float:
    """PIL GaussianBlur radius (a standard deviation) for (H, W): OpenCV's 11×11 kernel at 224 px, scaled."""
    return REFERENCE_SIGMA * _shorter_side(size) / REFERENCE_SIDE


def _rgb(image: Image.Image, name: str = "image") -> Image.Image:
    """A PIL image in RGB mode."""
    if not isinstance(image, Image.Image):
        raise MMConceptsError(f"{name} must be a PIL image, got {type(image).__name__}")
    return image if image.mode == "RGB" else image.convert("RGB")


def _hw(image: Image.Image) -> tuple[int, int]:
    """(H, W) of a PIL image."""
    return image.height, image.width


def visual_prompts(image: Image.Image, region: np.ndarray) -> list[Image.Image]:
    """Three prompts around a concept's region (h, w): red ellipse; plus gray outside; plus blur outside.

    The outline is drawn last, so its pixels are red in all three; inside the ellipse the image is
    otherwise unchanged.
    """
    image = _rgb(image)
    size = _hw(image)
    pixels = upsample(check_mask(region, "region"), size)
    if not pixels.any():
        raise MMConceptsError("the region of a visual prompt is empty")
    ellipse = fit_ellipse(pixels)
    inside = ellipse_mask(ellipse, size)[:, :, None]
    outline = ellipse_outline(ellipse, size, outline_thickness(size))
    original = np.asarray(image)
    gray = np.asarray(image.convert("L").convert("RGB"))
    blurred = np.asarray(blurred_copy(image))
    prompts = []
    for outside in (original, gray, blurred):
        prompt = np.where(inside, original, outside).astype(np.uint8)
        prompt[outline] = RED
        prompts.append(Image.fromarray(prompt))
    return prompts


def blurred_copy(image: Image.Image, radius: float | None = None) -> Image.Image:
    """The image blurred once (radius ``blur_radius`` of its size unless given), to composite with masks."""
    image = _rgb(image)
    radius = blur_radius(_hw(image)) if radius is None else radius
    if not radius >= 0:
        raise MMConceptsError(f"the blur radius must be ≥ 0, got {radius!r}")
    return image.filter(ImageFilter.GaussianBlur(radius))


def _composite(image: Image.Image, use_blurred: np.ndarray, blurred: Image.Image | None) -> Image.Image:
    """The image with the pixels of ``use_blurred`` (H, W) taken from the blurred copy."""
    image = _rgb(image)
    use_blurred = check_mask(use_blurred, "blur mask")
    if use_blurred.shape != _hw(image):
        raise MMConceptsError(f"the blur mask {use_blurred.shape} does not match the image's (H, W) {_hw(image)}")
    blurred = blurred_copy(image) if blurred is None else _rgb(blurred, "blurred")
    if _hw(blurred) != _hw(image):
        raise MMConceptsError(f"the blurred copy {_hw(blurred)} does not match the image's (H, W) {_hw(image)}")
    mixed = np.where(use_blurred[:, :, None], np.asarray(blurred), np.asarray(image))
    return Image.fromarray(mixed.astype(np.uint8))


def blur_outside(image: Image.Image, keep: np.ndarray, blurred: Image.Image | None = None) -> Image.Image:
    """The image with the pixels of ``keep`` (H, W) unchanged and everything else blurred (concepts blurred in).

    Pass ``blurred`` (from ``blurred_copy``) to reuse one blurred copy over many masks.
    """
    return _composite(image, ~check_mask(keep, "keep"), blurred)


def blur_inside(image: Image.Image, remove: np.ndarray, blurred: Image.Image | None = None) -> Image.Image:
    """The image with the pixels of ``remove`` (H, W) blurred and everything else unchanged (concepts blurred out).

    Pass ``blurred`` (from ``blurred_copy``) to reuse one blurred copy over many masks.
    """
    return _composite(image, check_mask(remove, "remove"), blurred)

"""Numpy rasterisation of the shapes world: textured backgrounds and anti-aliased shapes.

Everything is vectorised over the pixel grid (no per-pixel Python), so thousands of
images take seconds. Shapes are drawn at 2× supersampling and blended by coverage,
which keeps small shapes recognisable at 64 × 64.
"""

from __future__ import annotations

import math

import numpy as np

SUPERSAMPLE = 2

# Outline of each polygon shape as (angle from "up", clockwise; radius as a fraction of R).
# Every outline is star-shaped around the centre, which is what `_polygon_mask` needs.
_ARM = 1 / 3  # half-width of the cross's arms, as a fraction of R


def _regular(n: int, start: float, radius: float = 1.0) -> list[tuple[float, float]]:
    return [(start + 2 * math.pi * k / n, radius) for k in range(n)]


def _cross() -> list[tuple[float, float]]:
    pts = []
    for k in range(4):  # one arm per quarter turn: its two outer corners and the inner corner after it
        base = k * math.pi / 2
        pts += [(base - math.atan(_ARM), math.hypot(1, _ARM)), (base + math.atan(_ARM), math.hypot(1, _ARM))]
        pts.append((base + math.pi / 4, math.hypot(_ARM, _ARM)))
    return pts


_OUTLINES = {
    "square": _regular(4, math.pi / 4, 1.05),
    "triangle": _regular(3, 0.0, 1.15),
    "diamond": _regular(4, 0.0, 1.1),
    "star": [(math.pi * k / 5, 1.15 if k % 2 == 0 else 0.48) for k in range(10)],
    "cross": _cross(),
}
DRAWABLE = ("circle", *_OUTLINES)
# How far any shape reaches from its centre, in units of its radius.
EXTENT = max(q for outline in _OUTLINES.values() for _, q in outline)


def _polygon_mask(dx: np.ndarray, dy: np.ndarray, outline: list[tuple[float, float]], r: float) -> np.ndarray:
    """Inside test for a polygon that is star-shaped around the origin.

    The point's angle picks the edge between two consecutive vertices; the point
    is inside when it lies on the origin's side of that edge.
    """
    angles = np.array([a for a, _ in outline]) % (2 * math.pi)
    order = np.argsort(angles)
    angles = angles[order]
    radii = np.array([q for _, q in outline])[order] * r
    vx, vy = radii * np.sin(angles), -radii * np.cos(angles)
    theta = np.arctan2(dx, -dy) % (2 * math.pi)
    k = (np.searchsorted(angles, theta, side="right") - 1) % len(angles)
    k1 = (k + 1) % len(angles)
    ex, ey = vx[k1] - vx[k], vy[k1] - vy[k]
    side_point = ex * (dy - vy[k]) - ey * (dx - vx[k])
    side_origin = ex * (-vy[k]) - ey * (-vx[k])
    return side_point * side_origin >= 0


def shape_coverage(shape: str, size: int, cx: float, cy: float, r: float) -> np.ndarray:
    """size × size array in [0, 1]: the fraction of each pixel that the shape covers."""
    step = 1.0 / SUPERSAMPLE
    coords = (np.arange(size * SUPERSAMPLE) + 0.5) * step
    dx = coords[None, :] - cx
    dy = coords[:, None] - cy
    if shape == "circle":
        inside = dx**2 + dy**2 <= r**2
    else:
        dx, dy = np.broadcast_arrays(dx, dy)
        inside = _polygon_mask(dx, dy, _OUTLINES[shape], r)
    return inside.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))


def paint(canvas: np.ndarray, coverage: np.ndarray, rgb: np.ndarray) -> None:
    """Blend a flat colour into a float canvas (H × W × 3) by coverage, in place."""
    a = coverage[..., None]
    canvas *= 1 - a
    canvas += a * rgb


def background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """size × size × 3 float canvas (0–255) of one background kind.

    Textures are low-contrast on purpose: strong noise or stripes hide the edges of
    small shapes, and the tiny LMM then took ~40% more steps to start naming shapes.
    """
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    if kind == "plain":
        tone = 200 + rng.uniform(-12, 12)
        img = np.full((size, size, 3), tone)
    elif kind == "grass":
        # Olive base, per-pixel noise smeared vertically into blades.
        noise = rng.normal(0, 1, (size + 3, size))
        blades = (noise[:-3] + noise[1:-2] + noise[2:-1] + noise[3:]) / 2
        img = np.array([85.0, 125.0, 50.0]) + blades[..., None] * np.array([5.0, 9.0, 4.0])
    elif kind == "stripes":
        period = rng.uniform(7, 11)
        phase = rng.uniform(0, period)
        band = ((x + y + phase) % period) < period / 2
        img = np.where(band[..., None], np.array([230.0, 228.0, 215.0]), np.array([195.0, 195.0, 215.0]))
    elif kind == "sky":
        # Deep blue at the top fading to haze at the bottom.
        t = (y / (size - 1))[..., None] * rng.uniform(0.8, 1.0)
        img = (1 - t) * np.array([85.0, 145.0, 230.0]) + t * np.array([225.0, 235.0, 250.0])
    else:
        raise KeyError(kind)
    return np.ascontiguousarray(img, dtype=np.float64)

"""Scenes of the shapes dataset: what an image is, and its pixels.

Owns the palette (COLOURS, SHAPES, SIZES), `Scene` and its `SceneObject`s in
paint order, `generate_scene` (a pure function of `(seed, split, index)`),
`render` (the image and each object's VISIBLE mask) and `object_mask`.
Scenes draw their colours and shapes from a small per-scene subset, so
distractors share attributes with the target (as in UNC+ and G-Ref, where a
single word rarely suffices). `_rng` gives one independent random stream per
(seed, split, image, purpose): stream 0 draws the scene here, stream 1 the
expressions (`grammar.generate_expressions`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Tuple

import numpy as np

SPLITS = ("train", "val", "test")
_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}

# Saturated object colours; the background is kept desaturated (see
# `_background`), so colour words name what one sees.
COLOURS: Dict[str, Tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (40, 165, 55),
    "blue": (40, 75, 215),
    "yellow": (235, 215, 30),
    "purple": (145, 45, 185),
    "orange": (245, 135, 20),
}
SHAPES = ("square", "circle", "triangle", "diamond", "star")
SIZES = ("small", "big")
# Radius of the shape's bounding circle as a fraction of the image's shorter
# side: the two classes never overlap (largest small / smallest big = 0.55).
_RADIUS_RANGE = {"small": (0.090, 0.110), "big": (0.170, 0.200)}
_COLOUR_JITTER = 12  # per-object constant offset of each channel, +-
_MIN_VISIBLE_FRACTION = 0.65  # of an object's own area left uncovered


@dataclasses.dataclass(frozen=True)
class SceneObject:
    """One painted shape. `center` is (x, y) in pixels, `radius` in pixels."""

    shape: str
    colour: str
    size: str
    center: Tuple[float, float]
    radius: float
    rgb: Tuple[int, int, int]  # the exact colour of its pixels in the image


@dataclasses.dataclass(frozen=True)
class Background:
    """Parameters of the textured background (gradient + stripes + noise)."""

    colour_a: Tuple[float, float, float]
    colour_b: Tuple[float, float, float]
    gradient_angle: float
    stripe_angle: float
    stripe_period: float
    stripe_amplitude: float
    square_stripes: bool
    noise_sigma: float
    noise_seed: int


@dataclasses.dataclass(frozen=True)
class Scene:
    """A generated image: `objects` in paint order (index 0 is at the back)."""

    seed: int
    split: str
    index: int
    height: int
    width: int
    objects: Tuple[SceneObject, ...]
    background: Background


def _rng(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    """Independent generator per (seed, split, image, purpose)."""
    return np.random.default_rng(
        np.random.SeedSequence([int(seed), _SPLIT_CODES[split], int(index), stream]))


def _polygon_mask(vertices: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test of pixel centres.

    Args:
      vertices: float [V, 2] (x, y) in order around the polygon.
      xs: float [1, w] pixel-centre x; ys: float [h, 1] pixel-centre y.
    Returns: bool [h, w].
    """
    inside = np.zeros((ys.shape[0], xs.shape[1]), dtype=bool)
    for (x0, y0), (x1, y1) in zip(vertices, np.roll(vertices, -1, axis=0)):
        if y0 == y1:
            continue
        crosses = (ys > min(y0, y1)) & (ys <= max(y0, y1))  # [h, 1]
        x_at = x0 + (ys - y0) * (x1 - x0) / (y1 - y0)  # [h, 1]
        inside ^= crosses & (xs < x_at)
    return inside


def _shape_vertices(shape: str, cx: float, cy: float, r: float) -> np.ndarray:
    """Polygon of a triangle, diamond or star with bounding radius `r`."""
    if shape == "triangle":  # pointing up; circumradius r
        angles = np.deg2rad([-90.0, 30.0, 150.0])
        radii = np.full(3, r)
    elif shape == "diamond":  # a square turned 45 degrees, a bit narrower
        angles = np.deg2rad([-90.0, 0.0, 90.0, 180.0])
        radii = np.array([r, 0.8 * r, r, 0.8 * r])
    elif shape == "star":  # five points, inner radius 0.45 r
        angles = np.deg2rad(-90.0 + 36.0 * np.arange(10))
        radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
    else:
        raise ValueError(f"no polygon for shape {shape!r}")
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)


def _object_window(obj: SceneObject, height: int, width: int) -> Tuple[int, int, int, int]:
    """(y0, y1, x0, x1) pixel window holding the whole shape, clipped to the image."""
    cx, cy = obj.center
    r = obj.radius + 1.0
    return (max(0, int(math.floor(cy - r))), min(height, int(math.ceil(cy + r)) + 1),
            max(0, int(math.floor(cx - r))), min(width, int(math.ceil(cx + r)) + 1))


def _window_mask(obj: SceneObject, window: Tuple[int, int, int, int]) -> np.ndarray:
    """bool [y1-y0, x1-x0]: the object's full shape (ignoring occlusion) in `window`."""
    y0, y1, x0, x1 = window
    xs = (np.arange(x0, x1, dtype=np.float64) + 0.5)[None, :]  # pixel centres
    ys = (np.arange(y0, y1, dtype=np.float64) + 0.5)[:, None]
    cx, cy = obj.center
    r = obj.radius
    if obj.shape == "circle":
        return (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r
    if obj.shape == "square":  # half side 0.8 r: about a circle's area
        return (np.abs(xs - cx) <= 0.8 * r) & (np.abs(ys - cy) <= 0.8 * r)
    return _polygon_mask(_shape_vertices(obj.shape, cx, cy, r), xs, ys)


def object_mask(obj: SceneObject, height: int, width: int) -> np.ndarray:
    """bool [height, width]: the object's full shape, before occlusion."""
    mask = np.zeros((height, width), dtype=bool)
    window = _object_window(obj, height, width)
    y0, y1, x0, x1 = window
    mask[y0:y1, x0:x1] = _window_mask(obj, window)
    return mask


def _sample_attributes(rng: np.random.Generator, count: int) -> List[Tuple[str, str, str]]:
    """(shape, colour, size) per object, from a small per-scene palette.

    Two to four colours and shapes per scene make distractors that share the
    target's colour or shape, so most targets need several words.
    """
    colour_names = list(COLOURS)
    palette = rng.choice(colour_names, size=int(rng.integers(2, min(4, count) + 1)),
                         replace=False)
    shapes = rng.choice(SHAPES, size=int(rng.integers(2, min(4, count) + 1)), replace=False)
    return [(str(rng.choice(shapes)), str(rng.choice(palette)), str(rng.choice(SIZES)))
            for _ in range(count)]


def _place_objects(rng, attributes, height, width, object_scale: float = 1.0) -> List[SceneObject]:
    """Positions by rejection: each object stays >= 65% visible after all paints.

    Objects are placed in paint order; a new object is accepted when no earlier
    object loses too much of its area under it. An object that cannot be
    placed in 60 tries is dropped (rare; the scene keeps >= 3 objects because
    the caller retries otherwise).
    """
    short_side = min(height, width)
    owner = np.full((height, width), -1, dtype=np.int32)  # top-most object per pixel
    areas: List[int] = []
    visible: List[int] = []
    objects: List[SceneObject] = []
    for shape, colour, size in attributes:
        low, high = _RADIUS_RANGE[size]
        radius = float(rng.uniform(low, high) * object_scale * short_side)
        jitter = rng.integers(-_COLOUR_JITTER, _COLOUR_JITTER + 1, size=3)
        rgb = tuple(int(v) for v in np.clip(np.array(COLOURS[colour]) + jitter, 0, 255))
        for _ in range(60):
            cx = float(rng.uniform(radius + 2, width - radius - 2))
            cy = float(rng.uniform(radius + 2, height - radius - 2))
            candidate = SceneObject(shape, colour, size, (cx, cy), radius, rgb)
            window = _object_window(candidate, height, width)
            shape_mask = _window_mask(candidate, window)
            y0, y1, x0, x1 = window
            covered = owner[y0:y1, x0:x1][shape_mask]
            lost = np.bincount(covered[covered >= 0], minlength=len(objects))
            if all(visible[j] - lost[j] >= _MIN_VISIBLE_FRACTION * areas[j]
                   for j in range(len(objects))):
                owner[y0:y1, x0:x1][shape_mask] = len(objects)
                for j in range(len(objects)):
                    visible[j] -= int(lost[j])
                areas.append(int(shape_mask.sum()))
                visible.append(areas[-1])
                objects.append(candidate)
                break
    return objects


def _sample_background(rng: np.random.Generator) -> Background:
    def muted_colour():
        hue_rgb = rng.uniform(0.0, 255.0, size=3)
        grey = rng.uniform(70.0, 200.0)
        saturation = rng.uniform(0.08, 0.35)
        return tuple(float(v) for v in grey + saturation * (hue_rgb - hue_rgb.mean()))

    return Background(
        colour_a=muted_colour(), colour_b=muted_colour(),
        gradient_angle=float(rng.uniform(0.0, 2 * math.pi)),
        stripe_angle=float(rng.uniform(0.0, math.pi)),
        stripe_period=float(rng.uniform(5.0, 22.0)),
        stripe_amplitude=float(rng.uniform(8.0, 30.0)),
        square_stripes=bool(rng.random() < 0.5),
        noise_sigma=float(rng.uniform(3.0, 12.0)),
        noise_seed=int(rng.integers(0, 2 ** 31 - 1)))


def generate_scene(seed: int, split: str, index: int, min_size: int = 120,
                   max_size: int = 200, object_scale: float = 1.0) -> Scene:
    """The scene of image `index` of `split`: a pure function of its arguments.

    Height and width are drawn independently in [min_size, max_size], so
    aspect ratios vary up to max_size / min_size.
    """
    if split not in _SPLIT_CODES:
        raise ValueError(f"unknown shapes split {split!r}; expected one of {SPLITS}")
    rng = _rng(seed, split, index, stream=0)
    height = int(rng.integers(min_size, max_size + 1))
    width = int(rng.integers(min_size, max_size + 1))
    background = _sample_background(rng)
    while True:  # terminates: 3 objects always fit at these sizes
        count = int(rng.integers(3, 7))
        objects = _place_objects(rng, _sample_attributes(rng, count), height, width,
                                 object_scale)
        if len(objects) >= 3:
            break
    return Scene(int(seed), split, int(index), height, width, tuple(objects), background)


def _background(scene: Scene) -> np.ndarray:
    """float64 [H, W, 3]: gradient between two muted colours, stripes, noise."""
    bg = scene.background
    h, w = scene.height, scene.width
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    along = xs * math.cos(bg.gradient_angle) + ys * math.sin(bg.gradient_angle)
    t = (along - along.min()) / max(float(np.ptp(along)), 1.0)
    image = (1 - t)[..., None] * np.array(bg.colour_a) + t[..., None] * np.array(bg.colour_b)
    phase = (xs * math.cos(bg.stripe_angle) + ys * math.sin(bg.stripe_angle)) / bg.stripe_period
    wave = np.sin(2 * math.pi * phase)
    if bg.square_stripes:
        wave = np.sign(wave)
    image += bg.stripe_amplitude * wave[..., None]
    noise_rng = np.random.default_rng(bg.noise_seed)
    image += noise_rng.normal(0.0, bg.noise_sigma, size=(h, w, 1))  # luminance noise
    image += noise_rng.normal(0.0, bg.noise_sigma / 2, size=(h, w, 3))
    return image


def render(scene: Scene) -> Tuple[np.ndarray, np.ndarray]:
    """Paints the scene back to front.

    Returns:
      image: uint8 [H, W, 3] RGB.
      masks: bool [K, H, W], the VISIBLE pixels of each of the K objects
        (pairwise disjoint; every pixel of masks[k] has colour objects[k].rgb).
    """
    image = np.clip(np.rint(_background(scene)), 0, 255).astype(np.uint8)
    owner = np.full((scene.height, scene.width), -1, dtype=np.int32)
    for k, obj in enumerate(scene.objects):
        y0, y1, x0, x1 = window = _object_window(obj, scene.height, scene.width)
        shape_mask = _window_mask(obj, window)
        image[y0:y1, x0:x1][shape_mask] = obj.rgb
        owner[y0:y1, x0:x1][shape_mask] = k
    masks = owner[None] == np.arange(len(scene.objects))[:, None, None]
    return image, masks

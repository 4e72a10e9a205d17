"""A synthetic referring-segmentation dataset ("shapes"), generated from a seed.

Every image is a scene of 3 to 6 coloured shapes on a textured background;
every referring expression singles out one object of its scene, and its mask
is the object's VISIBLE pixels (objects are painted back to front, so a later
object hides the parts of earlier ones it covers). Nothing is downloaded: an
image, its masks and its expressions are a pure function of
`(seed, split, index)`, so preprocessing workers in other processes regenerate
exactly the same data from the ids alone.

Meaning of an expression. Every sentence is rendered from a `Description`
(attributes, extreme, ordinal, relation to an anchor, or nearest to an anchor)
whose meaning `evaluate` computes with three truth values per object: TRUE,
FALSE and UNCLEAR (a spatial comparison closer than a margin). A description
is kept only when `resolve` finds exactly one TRUE object and no UNCLEAR one,
so every expression refers UNAMBIGUOUSLY to its target, and spatial words are
never used for near ties. Scenes draw their colours and shapes from a small
per-scene subset, so distractors share attributes with the target (as in UNC+
and G-Ref, where a single word rarely suffices).

Layout of ids: image `shapes-<split>-<index:06d>`, ref and ann
`<image_id>-o<k>` (k = the object's paint order), sentence `<ref_id>-s<j>`.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import math
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from tf_rmi.data.sources import DataError, Expression, Source
from tf_rmi.data.text import DEFAULT_NUM_WORDS, tokenize

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
_SPATIAL_MARGIN = 0.10  # fraction of the image side a comparison must exceed
# Longest sentence in tokens: the model reads T = 20 words and the original
# keeps only the first 20, so longer sentences would lose their end.
MAX_TOKENS = DEFAULT_NUM_WORDS

DIRECTIONS = ("left", "right", "top", "bottom")
KINDS = ("attributes", "extreme", "ordinal", "relation", "nearest")

FALSE, UNCLEAR, TRUE = 0, 1, 2  # ordered so that AND = min (Kleene logic)


# ----------------------------------------------------------------------------
# Scenes


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


# ----------------------------------------------------------------------------
# Meaning of descriptions


@dataclasses.dataclass(frozen=True)
class Filter:
    """Attributes an object must have; None means "any".

    `region` ("top", "bottom", "left", "right") says the object lies in that
    outer third of the image ("near the top"); between a third and the middle
    it is UNCLEAR.
    """

    colour: Optional[str] = None
    shape: Optional[str] = None
    size: Optional[str] = None
    region: Optional[str] = None

    def attribute_count(self) -> int:
        return sum(v is not None for v in (self.colour, self.shape, self.size, self.region))


@dataclasses.dataclass(frozen=True)
class Description:
    """The meaning of one referring expression.

    kind:
      "attributes": the one object matching `target`.
      "extreme": among objects matching `target`, the one furthest towards
        `direction` ("the leftmost circle").
      "ordinal": the `ordinal`-th of them counted from `direction`
        ("the second square from the right").
      "relation": the object matching `target` that lies towards `direction`
        of the anchor, the one object matching `anchor`
        ("the circle left of the green triangle"; "top" = above).
      "nearest": the object matching `target` closest to the anchor.
    """

    kind: str
    target: Filter
    direction: Optional[str] = None
    ordinal: int = 1
    anchor: Optional[Filter] = None


def _position_key(obj: SceneObject, direction: str) -> float:
    """Smaller key = further towards `direction`."""
    x, y = obj.center
    return {"left": x, "right": -x, "top": y, "bottom": -y}[direction]


def _margin(scene: Scene, direction: str) -> float:
    side = scene.width if direction in ("left", "right") else scene.height
    return _SPATIAL_MARGIN * side


def filter_states(flt: Filter, scene: Scene) -> List[int]:
    """TRUE / FALSE / UNCLEAR per object for "this object matches `flt`"."""
    states = []
    for obj in scene.objects:
        state = TRUE
        if ((flt.colour is not None and obj.colour != flt.colour)
                or (flt.shape is not None and obj.shape != flt.shape)
                or (flt.size is not None and obj.size != flt.size)):
            state = FALSE
        elif flt.region is not None:
            # Fraction of the way from the named edge to the opposite one.
            x, y = obj.center
            fraction = {"left": x / scene.width, "right": 1 - x / scene.width,
                        "top": y / scene.height, "bottom": 1 - y / scene.height}[flt.region]
            state = TRUE if fraction < 1 / 3 else (UNCLEAR if fraction <= 0.5 else FALSE)
        states.append(state)
    return states


def _unique(states: Sequence[int]) -> Optional[int]:
    """The index of the only TRUE state when no state is UNCLEAR, else None."""
    if UNCLEAR in states or states.count(TRUE) != 1:
        return None
    return states.index(TRUE)


def evaluate(description: Description, scene: Scene) -> List[int]:
    """TRUE / FALSE / UNCLEAR per object for "the description refers to it".

    Spatial comparisons are TRUE only beyond a margin of 10% of the image side
    (width for left/right, height for top/bottom) and UNCLEAR inside it. Any
    UNCLEAR in the set an extreme / ordinal / relation ranges over, or an
    anchor that is not unique, makes every candidate UNCLEAR: the description
    is then never used.
    """
    objects = scene.objects
    n = len(objects)
    members = filter_states(description.target, scene)
    kind = description.kind
    if kind == "attributes":
        return members
    if kind not in KINDS:
        raise ValueError(f"unknown description kind {kind!r}; expected one of {KINDS}")
    all_unclear = [UNCLEAR if m != FALSE else FALSE for m in members]
    if kind in ("relation", "nearest"):
        anchor = _unique(filter_states(description.anchor, scene))
        if anchor is None:
            return [UNCLEAR] * n
        members = [FALSE if i == anchor else m for i, m in enumerate(members)]
        all_unclear = [UNCLEAR if m != FALSE else FALSE for m in members]
    if UNCLEAR in members:
        return all_unclear
    group = [i for i in range(n) if members[i] == TRUE]
    states = [FALSE] * n
    if kind == "relation":
        # "towards `direction` of the anchor": key difference beyond the margin.
        margin = _margin(scene, description.direction)
        anchor_key = _position_key(objects[anchor], description.direction)
        for i in group:
            ahead = anchor_key - _position_key(objects[i], description.direction)
            states[i] = TRUE if ahead > margin else (UNCLEAR if ahead > 0 else FALSE)
        return states
    if kind == "nearest":
        margin = _SPATIAL_MARGIN * min(scene.height, scene.width)
        ax, ay = objects[anchor].center
        distance = {i: math.hypot(objects[i].center[0] - ax, objects[i].center[1] - ay)
                    for i in group}
        ranked = sorted(group, key=distance.get)
        if not ranked:
            return states
        if len(ranked) > 1 and distance[ranked[1]] - distance[ranked[0]] <= margin:
            return all_unclear
        states[ranked[0]] = TRUE
        return states
    margin = _margin(scene, description.direction)
    ranked = sorted(group, key=lambda i: _position_key(objects[i], description.direction))
    keys = [_position_key(objects[i], description.direction) for i in ranked]
    if kind == "extreme":
        for rank, i in enumerate(ranked):
            beaten = keys[0] < keys[rank] - margin
            states[i] = FALSE if beaten else (TRUE if rank == 0 else UNCLEAR)
        if len(ranked) > 1 and keys[1] - keys[0] <= margin:
            states[ranked[0]] = UNCLEAR
        return states
    # ordinal: the first `ordinal` + 1 positions must be clearly separated.
    k = description.ordinal
    if len(ranked) < k:
        return states
    checked = keys[:k + 1]
    if any(b - a <= margin for a, b in zip(checked, checked[1:])):
        return all_unclear
    states[ranked[k - 1]] = TRUE
    return states


def resolve(description: Description, scene: Scene) -> Optional[int]:
    """The index of the one object `description` refers to, or None if not unique."""
    return _unique(evaluate(description, scene))


# ----------------------------------------------------------------------------
# Sentences

_SIZE_WORDS = {"small": ("small", "small", "little"), "big": ("big", "big", "large")}
_GENERIC_NOUNS = ("shape", "object")
_REGION_PHRASES = {
    "top": ("near the top", "in the upper part"),
    "bottom": ("near the bottom", "in the lower part"),
    "left": ("on the left side", "near the left edge"),
    "right": ("on the right side", "near the right edge"),
}
_SUPERLATIVES = {"left": ("leftmost",), "right": ("rightmost",),
                 "top": ("topmost", "highest"), "bottom": ("lowest", "bottommost")}
_SUPERLATIVE_SUFFIXES = {"left": ("furthest to the left",), "right": ("furthest to the right",),
                         "top": ("closest to the top",), "bottom": ("closest to the bottom",)}
_PAIR_ADJECTIVES = {"left": ("left",), "right": ("right",), "top": ("top", "upper"),
                    "bottom": ("bottom", "lower")}
_ORDINALS = {2: "second", 3: "third"}
_FROM_SIDE = {"left": "from the left", "right": "from the right", "top": "from the top",
              "bottom": "from the bottom"}
_RELATIONS = {"left": ("left of", "to the left of"), "right": ("right of", "to the right of"),
              "top": ("above",), "bottom": ("below", "under", "beneath")}
_NEAREST = ("closest to", "nearest to", "next to")
_LEADS = ("find", "select", "please find", "look for", "show me")
_TAILS = ("in the picture", "in the image")


def vocabulary_tokens() -> List[str]:
    """Every word the grammar can say, after `<pad> <go> <eos> <unk>`.

    Fixed by the grammar, not counted from a split, so the ids are the same for
    every seed and image count: a model trained on one draw reads the records
    of any other draw with the right words. Order: the special tokens, then
    the words alphabetically.
    """
    from tf_rmi.data.text import SPECIAL_TOKENS

    phrases = [*COLOURS, *SHAPES, "the", "one", "that is", "which is", "that is just",
               *(w for ws in _SIZE_WORDS.values() for w in ws), *_GENERIC_NOUNS,
               *(p for ps in _REGION_PHRASES.values() for p in ps),
               *(p for ps in _SUPERLATIVES.values() for p in ps),
               *(p for ps in _SUPERLATIVE_SUFFIXES.values() for p in ps),
               *(p for ps in _PAIR_ADJECTIVES.values() for p in ps), *_ORDINALS.values(),
               *_FROM_SIDE.values(), *(p for ps in _RELATIONS.values() for p in ps),
               *_NEAREST, *_LEADS, *_TAILS]
    words = sorted({w for phrase in phrases for w in phrase.split()})
    return list(SPECIAL_TOKENS) + words


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _noun_phrase(flt: Filter, rng, extra_adjective: Optional[str] = None,
                 generic_one: bool = True) -> List[str]:
    """Words of "[extra] [size] [colour] noun [region]", without an article."""
    words = []
    if extra_adjective:
        words.append(extra_adjective)
    if flt.size:
        words.append(_pick(rng, _SIZE_WORDS[flt.size]))
    if flt.colour:
        words.append(flt.colour)
    if flt.shape:
        words.append(flt.shape)
    elif words and generic_one and rng.random() < 0.35:
        words.append("one")
    else:
        words.append(_pick(rng, _GENERIC_NOUNS))
    if flt.region:
        words.extend(_pick(rng, _REGION_PHRASES[flt.region]).split())
    return words


def _group_size(description: Description, scene: Scene) -> int:
    return filter_states(description.target, scene).count(TRUE)


def describe(description: Description, scene: Scene, rng: np.random.Generator,
             terse: bool = False, verbose: bool = False) -> str:
    """An English sentence for `description`.

    terse: ReferIt-like, no article ("red circle", "leftmost"); verbose: with
    filler words ("please find the ... that is just ..."). Fillers never change
    the meaning: the meaning is `description`.
    """
    article = [] if terse else ["the"]
    target, kind = description.target, description.kind
    if kind == "attributes":
        if terse and target.attribute_count() == 1 and target.region is None:
            words = [target.colour or target.shape or _pick(rng, _SIZE_WORDS[target.size])]
        else:
            words = article + _noun_phrase(target, rng)
    elif kind == "extreme":
        direction = description.direction
        if terse and target.attribute_count() == 0 and rng.random() < 0.7:
            words = [_pick(rng, _SUPERLATIVES[direction])]
        elif _group_size(description, scene) == 2 and rng.random() < 0.5:
            words = article + _noun_phrase(target, rng, _pick(rng, _PAIR_ADJECTIVES[direction]))
        elif rng.random() < 0.6:
            words = article + _noun_phrase(target, rng, _pick(rng, _SUPERLATIVES[direction]))
        else:
            words = (article + _noun_phrase(target, rng)
                     + _pick(rng, _SUPERLATIVE_SUFFIXES[direction]).split())
    elif kind == "ordinal":
        ordinal = _ORDINALS[description.ordinal]
        side = _FROM_SIDE[description.direction].split()
        if terse:
            side = side[::2]  # "from left"
        words = article + _noun_phrase(target, rng, ordinal, generic_one=False) + side
    else:
        if kind == "relation":
            relation = _pick(rng, _RELATIONS[description.direction]).split()
        else:
            relation = _pick(rng, _NEAREST).split()
        if verbose and rng.random() < 0.7:
            relation = [_pick(rng, ("that is", "which is", "that is just"))] + relation
            relation = " ".join(relation).split()
        words = (article + _noun_phrase(target, rng) + relation + article
                 + _noun_phrase(description.anchor, rng, generic_one=False))
    if verbose:
        if rng.random() < 0.6:
            words = _pick(rng, _LEADS).split() + words
        if rng.random() < 0.3:
            words = words + _pick(rng, _TAILS).split()
    sentence = " ".join(words)
    # Occasional capitals, commas and full stops exercise the tokenizer.
    if kind in ("relation", "nearest") and rng.random() < 0.1:
        sentence = re.sub(r" (that is|which is|left of|right of|to the|above|below|under"
                          r"|beneath|closest|nearest|next) ", r", \1 ", sentence, count=1)
    if rng.random() < 0.15:
        sentence += "."
    if rng.random() < 0.15:
        sentence = sentence[0].upper() + sentence[1:]
    return sentence


@dataclasses.dataclass(frozen=True)
class ReferringExpression:
    """A sentence, its meaning, and the object (paint index) it refers to."""

    object_index: int
    sentence: str
    description: Description


def _attribute_filters(obj: SceneObject) -> List[Filter]:
    """The 8 filters made of subsets of the object's colour, shape and size."""
    filters = []
    for use_size in (False, True):
        for use_colour in (False, True):
            for use_shape in (False, True):
                filters.append(Filter(colour=obj.colour if use_colour else None,
                                      shape=obj.shape if use_shape else None,
                                      size=obj.size if use_size else None))
    return filters


def _region_of(index: int, scene: Scene, rng) -> Optional[str]:
    """A region phrase that is clearly TRUE for object `index`, or None."""
    regions = [r for r in DIRECTIONS
               if filter_states(Filter(region=r), scene)[index] == TRUE]
    return _pick(rng, regions) if regions else None


def candidate_descriptions(scene: Scene, target: int) -> Dict[str, List[Description]]:
    """Every non-verbose description that resolves to object `target`, by kind.

    Anchors are described by their shortest unique attribute filters.
    """
    obj = scene.objects[target]
    filters = _attribute_filters(obj)
    found: Dict[str, List[Description]] = collections.defaultdict(list)

    def keep(description):
        if resolve(description, scene) == target:
            found[description.kind].append(description)

    for flt in filters[1:]:
        keep(Description("attributes", flt))
    for flt in filters:
        for direction in DIRECTIONS:
            keep(Description("extreme", flt, direction))
            for ordinal in (2, 3):
                if filter_states(flt, scene).count(TRUE) <= ordinal:
                    continue  # "the second of two" is just "the last"
                keep(Description("ordinal", flt, direction, ordinal))
    for a, anchor_obj in enumerate(scene.objects):
        if a == target:
            continue
        unique = [f for f in _attribute_filters(anchor_obj)[1:]
                  if resolve(Description("attributes", f), scene) == a]
        if not unique:
            continue
        shortest = min(f.attribute_count() for f in unique)
        anchors = [f for f in unique if f.attribute_count() == shortest]
        for anchor in anchors:
            for flt in filters:
                keep(Description("nearest", flt, anchor=anchor))
                for direction in DIRECTIONS:
                    keep(Description("relation", flt, direction, anchor=anchor))
    return dict(found)


def _needs_spatial(description: Description, scene: Scene) -> bool:
    """True when the target's attributes alone do not single it out."""
    return resolve(Description("attributes", description.target), scene) is None


def _verbose_variant(description: Description, scene: Scene, target: int, rng) -> Description:
    """The description with all the target's attributes and true region phrases added."""
    obj = scene.objects[target]
    full = Filter(obj.colour, obj.shape, obj.size, _region_of(target, scene, rng)
                  if rng.random() < 0.5 else None)
    if description.kind in ("ordinal", "extreme"):
        full = dataclasses.replace(full, region=None)  # "the second ... near the top" is odd
    longer = dataclasses.replace(description, target=full)
    if description.anchor is not None:
        anchor_index = _unique(filter_states(description.anchor, scene))
        anchor_obj = scene.objects[anchor_index]
        anchor = Filter(anchor_obj.colour if rng.random() < 0.7 else description.anchor.colour,
                        anchor_obj.shape, anchor_obj.size if rng.random() < 0.7
                        else description.anchor.size,
                        _region_of(anchor_index, scene, rng) if rng.random() < 0.5 else None)
        longer = dataclasses.replace(longer, anchor=anchor)
    if resolve(longer, scene) == target:
        return longer
    return description


def _description_words(description: Description) -> int:
    """Rough length used to find the shortest descriptions."""
    cost = {"attributes": 0, "extreme": 1, "ordinal": 4, "relation": 3, "nearest": 3}
    anchor = description.anchor.attribute_count() + 1 if description.anchor else 0
    return description.target.attribute_count() + cost[description.kind] + anchor


def generate_expressions(scene: Scene, max_targets: int = 3) -> List[ReferringExpression]:
    """Two to four distinct unambiguous expressions for up to `max_targets` objects.

    Sentences have 1 to MAX_TOKENS tokens (the original tokenizer's count).

    Each expression picks a style (shortest, attributes, extreme/ordinal,
    relation/nearest, verbose), preferring descriptions whose spatial part is
    necessary. Deterministic for the scene.
    """
    rng = _rng(scene.seed, scene.split, scene.index, stream=1)
    # Prefer targets that no single attribute word singles out (UNC+ / G-Ref
    # style): an easy object goes to the back of the queue 80% of the time.
    single_word = [any(resolve(Description("attributes", f), scene) == k
                       for f in (Filter(colour=o.colour), Filter(shape=o.shape),
                                 Filter(size=o.size)))
                   for k, o in enumerate(scene.objects)]
    deferred = rng.random(len(scene.objects)) < 0.8
    order = sorted(rng.permutation(len(scene.objects)),
                   key=lambda k: bool(single_word[k] and deferred[k]))
    expressions: List[ReferringExpression] = []
    targets = []
    for target in order:
        if len(targets) == max_targets:
            break
        candidates = candidate_descriptions(scene, int(target))
        if candidates:
            targets.append((int(target), candidates))
    for target, candidates in sorted(targets):
        everything = [d for kind in KINDS for d in candidates.get(kind, [])]
        shortest = min(_description_words(d) for d in everything)
        wanted = int(rng.integers(2, 5))
        sentences: List[str] = []
        for _ in range(4 * wanted):
            if len(sentences) == wanted:
                break
            style = _pick(rng, ("shortest", "attributes", "spatial", "spatial", "relation",
                                "relation", "verbose", "verbose"))
            if style == "shortest":
                pool = [d for d in everything if _description_words(d) == shortest]
            elif style == "attributes":
                pool = candidates.get("attributes", [])
            elif style == "spatial":  # ordinals are rarer: give them half the draws
                pool = candidates.get("ordinal", []) if rng.random() < 0.5 else []
                pool = pool or candidates.get("extreme", []) + candidates.get("ordinal", [])
            else:
                pool = candidates.get("relation", []) + candidates.get("nearest", [])
                if style == "verbose" and not pool:
                    pool = everything
            if not pool:
                continue
            necessary = [d for d in pool if d.kind == "attributes" or _needs_spatial(d, scene)]
            if necessary and rng.random() < 0.8:
                pool = necessary
            description = pool[int(rng.integers(len(pool)))]
            verbose = style == "verbose"
            if verbose:
                description = _verbose_variant(description, scene, target, rng)
            sentence = describe(description, scene, rng, terse=style == "shortest"
                                and rng.random() < 0.6, verbose=verbose)
            if sentence in sentences or len(tokenize(sentence)) > MAX_TOKENS:
                continue
            sentences.append(sentence)
            expressions.append(ReferringExpression(target, sentence, description))
    return expressions


# ----------------------------------------------------------------------------
# The Source

_ID_PATTERN = re.compile(r"^shapes-(train|val|test)-(\d{6})(?:-o(\d+)(?:-s(\d+))?)?$")


def image_id(split: str, index: int) -> str:
    return f"shapes-{split}-{index:06d}"


@functools.lru_cache(maxsize=16)
def _rendered(seed: int, split: str, index: int, min_size: int, max_size: int,
              object_scale: float = 1.0):
    """(scene, image, masks) of one image; cached because an image serves
    several expressions. Callers must not modify the returned arrays."""
    scene = generate_scene(seed, split, index, min_size, max_size, object_scale)
    image, masks = render(scene)
    image.setflags(write=False)
    masks.setflags(write=False)
    return scene, image, masks


class ShapesSource(Source):
    """The synthetic dataset as a `Source`: train / val / test by image.

    Defaults give about 1800 / 380 / 530 expressions (train / val / test; about
    8.9 per image): preprocessing them takes well under a minute on two cores
    (about 35 ms per resized-and-padded training record), and a small model
    learns from them in a few minutes of CPU training. Picklable (only numbers are stored), so
    preprocessing workers in other processes regenerate images from the ids.
    """

    name = "shapes"
    vocab_name = None  # the grammar's own: `fixed_vocabulary`

    def __init__(self, seed: int = 0, num_train_images: int = 200, num_val_images: int = 40,
                 num_test_images: int = 60, min_size: int = 120, max_size: int = 200,
                 max_targets: int = 3, object_scale: float = 1.0):
        counts = {"train": num_train_images, "val": num_val_images, "test": num_test_images}
        for split, count in counts.items():
            if not isinstance(count, (int, np.integer)) or count < 0 or count > 999999:
                raise ValueError(f"num_{split}_images must be an integer in [0, 999999], "
                                 f"got {count!r}")
        if not (48 <= min_size <= max_size):
            raise ValueError(f"shapes image sizes need 48 <= min_size <= max_size, got "
                             f"min_size={min_size}, max_size={max_size}: raise min_size "
                             f"(small shapes would be a few pixels) or max_size")
        if max_targets < 1:
            raise ValueError(f"max_targets must be >= 1, got {max_targets}")
        if not 0.5 <= float(object_scale) <= 1.5:
            raise ValueError(f"object_scale must be in [0.5, 1.5] (larger shapes no longer fit "
                             f"3 objects at 65% visibility), got {object_scale}")
        self.seed = int(seed)
        self.image_counts = {split: int(count) for split, count in counts.items()}
        self.min_size = int(min_size)
        self.max_size = int(max_size)
        self.max_targets = int(max_targets)
        # Multiplies both size classes' radii (the classes stay apart: their ratio is kept).
        self.object_scale = float(object_scale)
        self._expression_cache: Dict[str, List[Tuple[Expression, ReferringExpression]]] = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_expression_cache"] = {}  # cheap to regenerate; keeps pickles small
        return state

    def splits(self) -> Sequence[str]:
        return SPLITS

    def fixed_vocabulary(self) -> List[str]:
        return vocabulary_tokens()

    def _render(self, split: str, index: int):
        return _rendered(self.seed, split, index, self.min_size, self.max_size,
                         self.object_scale)

    def scene(self, split: str, index: int) -> Scene:
        return self._render(split, index)[0]

    def _check_split(self, split: str) -> None:
        if split not in self.image_counts:
            raise ValueError(f"unknown shapes split {split!r}; expected one of {SPLITS}")

    def referring_expressions(self, split: str) -> List[Tuple[Expression, ReferringExpression]]:
        """(Expression, its meaning) pairs of `split`, ordered by image, object, sentence."""
        self._check_split(split)
        if split not in self._expression_cache:
            pairs = []
            for index in range(self.image_counts[split]):
                scene = generate_scene(self.seed, split, index, self.min_size, self.max_size,
                                       self.object_scale)
                image = image_id(split, index)
                per_object = collections.Counter()
                for referring in generate_expressions(scene, self.max_targets):
                    ref = f"{image}-o{referring.object_index}"
                    j = per_object[referring.object_index]
                    per_object[referring.object_index] += 1
                    pairs.append((Expression(image_id=image, ref_id=ref, ann_id=ref,
                                             sent_id=f"{ref}-s{j}", sentence=referring.sentence,
                                             split=split), referring))
            self._expression_cache[split] = pairs
        return list(self._expression_cache[split])

    def expressions(self, split: str) -> List[Expression]:
        return [expr for expr, _ in self.referring_expressions(split)]

    def _parse(self, expr: Expression) -> Tuple[str, int, Optional[int]]:
        """(split, image index, object index or None) from the expression's ids."""
        match = _ID_PATTERN.match(expr.image_id or "")
        if not match:
            raise DataError("missing_image", f"not a shapes image id: {expr.image_id!r} "
                            "(expected shapes-<split>-NNNNNN)", expr.image_id)
        split, index = match.group(1), int(match.group(2))
        if index >= self.image_counts[split]:
            raise DataError("missing_image", f"image {index} is beyond the "
                            f"{self.image_counts[split]} images of split {split!r} "
                            "(was it written with other num_*_images?)", expr.image_id)
        ref = _ID_PATTERN.match(expr.ref_id or "")
        if not ref or ref.group(3) is None or (ref.group(1), int(ref.group(2))) != (split, index):
            return split, index, None
        return split, index, int(ref.group(3))

    def load_image(self, expr: Expression) -> np.ndarray:
        split, index, _ = self._parse(expr)
        return self._render(split, index)[1].copy()

    def load_mask(self, expr: Expression) -> np.ndarray:
        split, index, obj = self._parse(expr)
        _, _, masks = self._render(split, index)
        if obj is None or obj >= len(masks):
            raise DataError("missing_annotation", f"ref id {expr.ref_id!r} names no object "
                            f"of image {expr.image_id!r}", expr.ref_id)
        mask = masks[obj].copy()
        if not mask.any():
            raise DataError("empty_mask", f"object {obj} of {expr.image_id} is hidden",
                            expr.ref_id)
        return mask


def length_histogram(sentences: Iterable[str]) -> Dict[int, int]:
    """{number of tokens (the original tokenizer's): number of sentences}, sorted."""
    from tf_rmi.data.text import tokenize  # the tokenizer the pipeline uses

    counts = collections.Counter(len(tokenize(s)) for s in sentences)
    return dict(sorted(counts.items()))

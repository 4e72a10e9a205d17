"""Meaning of descriptions: which object of a scene a `Description` refers to.

Every sentence is rendered from a `Description` (attributes, extreme, ordinal,
relation to an anchor, or nearest to an anchor) whose meaning `evaluate`
computes with three truth values per object: TRUE, FALSE and UNCLEAR (a
spatial comparison closer than a margin). A description is kept only when
`resolve` finds exactly one TRUE object and no UNCLEAR one, so every
expression refers UNAMBIGUOUSLY to its target, and spatial words are never
used for near ties. No words here: grammar.py says descriptions in English.
"""
from __future__ import annotations

import dataclasses
import math
from typing import List, Optional, Sequence

from tf_rmi.data.shapes.scenes import Scene, SceneObject

_SPATIAL_MARGIN = 0.10  # fraction of the image side a comparison must exceed

DIRECTIONS = ("left", "right", "top", "bottom")
KINDS = ("attributes", "extreme", "ordinal", "relation", "nearest")

FALSE, UNCLEAR, TRUE = 0, 1, 2  # ordered so that AND = min (Kleene logic)


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

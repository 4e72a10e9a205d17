"""Sentences of the shapes dataset: the words, and the expressions of a scene.

Owns everything said in words: the phrase tables and the fixed vocabulary
(`vocabulary_tokens`), `describe` (one `Description` as an English sentence)
and `generate_expressions`, which picks targets, finds their unambiguous
descriptions (`candidate_descriptions`, checked with `meaning.resolve`) and
says two to four distinct sentences per target, drawn from the image's
random stream 1.
"""
from __future__ import annotations

import collections
import dataclasses
import re
from typing import Dict, List, Optional, Sequence

import numpy as np

from tf_rmi.data.shapes.meaning import (DIRECTIONS, KINDS, TRUE, Description, Filter,
                                        _unique, filter_states, resolve)
from tf_rmi.data.shapes.scenes import COLOURS, SHAPES, Scene, SceneObject, _rng
from tf_rmi.data.text import DEFAULT_NUM_WORDS, tokenize

# Longest sentence in tokens: the model reads T = 20 words and the original
# keeps only the first 20, so longer sentences would lose their end.
MAX_TOKENS = DEFAULT_NUM_WORDS

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

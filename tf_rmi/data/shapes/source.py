"""The shapes dataset as a `Source`: ids, splits, cached images and masks.

Layout of ids: image `shapes-<split>-<index:06d>`, ref and ann
`<image_id>-o<k>` (k = the object's paint order), sentence `<ref_id>-s<j>`.
"""
from __future__ import annotations

import collections
import functools
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from tf_rmi.data.shapes.grammar import (ReferringExpression, generate_expressions,
                                        vocabulary_tokens)
from tf_rmi.data.shapes.scenes import SPLITS, Scene, generate_scene, render
from tf_rmi.data.sources import DataError, Expression, Source

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

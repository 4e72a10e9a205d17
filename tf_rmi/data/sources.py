"""The interface every raw dataset reader implements.

A `Source` lists expressions per split and loads the image and mask of one
expression on demand, so preprocessing workers can load in parallel. One
training sample is one (ref, sentence) pair, as in the original release.
"""
from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Expression:
    """One referring expression: the unit of a TFRecord example.

    Ids are kept as strings so COCO integers and ReferIt keys share a type.
    """

    image_id: str
    ref_id: str
    ann_id: str
    sent_id: str
    sentence: str
    split: str


class DataError(Exception):
    """A sample that cannot be used.

    `reason` is a short stable code used to count skips: "missing_image",
    "unreadable_image", "degenerate_image", "missing_annotation",
    "invalid_annotation", "missing_mask", "unreadable_mask", "empty_sentence",
    "undecodable_sentence", and on training splits only "mask_size_mismatch"
    and "empty_mask" (evaluation splits keep those samples as degenerate; see
    `preprocess_lib`); `path` names the file or record at fault.
    """

    def __init__(self, reason: str, message: str, path: Optional[str] = None):
        self.reason = reason
        self.path = path
        super().__init__(f"[{reason}] {message}" + (f" ({path})" if path else ""))


class Source:
    """Base class of dataset readers (REFER, ReferItGame, synthetic shapes)."""

    name: str = ""
    # File name of the original vocabulary this dataset uses, or None when the
    # vocabulary is built from the training split.
    vocab_name: Optional[str] = None

    def splits(self) -> Sequence[str]:
        raise NotImplementedError

    def fixed_vocabulary(self) -> Optional[List[str]]:
        """The dataset's own complete vocabulary (`<pad> <go> <eos> <unk>` first),
        or None when it is counted from the training split. A generated dataset
        knows every word its grammar can say, so its word ids then do not depend
        on which scenes a seed happened to draw."""
        return None

    def expressions(self, split: str) -> List[Expression]:
        """All expressions of `split`, in a deterministic order."""
        raise NotImplementedError

    def load_image(self, expr: Expression) -> np.ndarray:
        """uint8 [H, W, 3] RGB. Raises DataError when missing or unreadable."""
        raise NotImplementedError

    def load_mask(self, expr: Expression) -> np.ndarray:
        """bool [H, W], True on the referred object. Raises DataError."""
        raise NotImplementedError

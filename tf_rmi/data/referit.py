"""Reader of ReferItGame (SAIAPR TC-12 images, MATLAB masks).

Layout, as the original `build_batches.py` reads it under `data/referit/`
(the text_objseg release's data):

    <data_root>/referit_query_<split>.json   {"<imageid>_<n>": [sentence, ...]}
    <data_root>/images/<imageid>.jpg
    <data_root>/mask/<imageid>_<n>.mat       array `segimg_t`, 0 on the referred region

One expression per (query key, sentence). The original iterated the keys of a
Python 2 dict (arbitrary order); we keep the file order, sentences in order.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from tf_rmi import config
from tf_rmi.data.refer import load_image_file
from tf_rmi.data.sources import DataError, Expression, Source

MASK_ARRAY = "segimg_t"


def query_file_name(split: str) -> str:
    return f"referit_query_{split}.json"


def load_referit_mask(path: str) -> np.ndarray:
    """bool [H,W]: `segimg_t == 0` of a ReferIt .mat file, as the original's
    `load_referit_gt_mask`. Raises DataError `missing_mask` / `unreadable_mask`."""
    import scipy.io

    if not os.path.isfile(path):
        raise DataError("missing_mask", "mask file not found", path)
    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises several types for damaged files
        raise DataError("unreadable_mask", f"cannot read MATLAB file ({err})", path) from None
    if MASK_ARRAY not in mat:
        raise DataError("unreadable_mask", f"no '{MASK_ARRAY}' array (found "
                        f"{sorted(k for k in mat if not k.startswith('__'))})", path)
    segimg = np.asarray(mat[MASK_ARRAY])
    if segimg.ndim != 2 or segimg.size == 0:
        raise DataError("unreadable_mask", f"'{MASK_ARRAY}' has shape {segimg.shape}, "
                        "expected [H,W]", path)
    return segimg == 0


class ReferItSource(Source):
    """ReferItGame expressions.

    Args:
      data_root: the directory holding `referit_query_<split>.json` (the
        original's `data/referit/`).
      image_dir: default `<data_root>/images`.
      mask_dir: default `<data_root>/mask`.

    Raises FileNotFoundError when data_root is missing, and (from
    `expressions`) when a split's query file is missing.
    """

    name = "referit"
    vocab_name = config.dataset_spec("referit").vocab_file

    def __init__(self, data_root: str, image_dir: Optional[str] = None,
                 mask_dir: Optional[str] = None):
        if not os.path.isdir(data_root):
            raise FileNotFoundError(
                f"ReferIt data root {data_root} does not exist: point --data_root at the "
                "directory holding referit_query_<split>.json, images/<imageid>.jpg and "
                "mask/<imageid>_<n>.mat (the original's data/referit/)")
        self.data_root = data_root
        self.image_dir = image_dir or os.path.join(data_root, "images")
        self.mask_dir = mask_dir or os.path.join(data_root, "mask")
        self._queries: Dict[str, Dict[str, list]] = {}

    def splits(self) -> Sequence[str]:
        return config.dataset_spec("referit").splits

    def query_path(self, split: str) -> str:
        return os.path.join(self.data_root, query_file_name(split))

    def _load_queries(self, split: str) -> Dict[str, list]:
        if split not in self._queries:
            path = self.query_path(split)
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{path} not found: put the ReferIt query file of split '{split}' "
                    "there (referit_query_<split>.json from the text_objseg / "
                    "TF-phrasecut-public data/referit/ folder)")
            try:
                with open(path, "rb") as f:
                    queries = json.load(f)
            except ValueError as err:
                raise ValueError(f"{path} is not valid JSON ({err})") from err
            if not isinstance(queries, dict):
                raise ValueError(f"{path} must map '<imageid>_<n>' to sentence lists, "
                                 f"got a {type(queries).__name__}")
            self._queries[split] = queries
        return self._queries[split]

    def expressions(self, split: str) -> List[Expression]:
        """One Expression per (key, sentence), keys in file order. Ids:
        image `<imageid>`, ref and ann `<imageid>_<n>`, sentence `<key>-<j>`."""
        out = []
        for key, sentences in self._load_queries(split).items():
            if isinstance(sentences, str):
                sentences = [sentences]
            image_id = key.split("_", 1)[0]
            for j, sentence in enumerate(sentences or []):
                out.append(Expression(image_id=image_id, ref_id=key, ann_id=key,
                                      sent_id=f"{key}-{j}",
                                      sentence=sentence if isinstance(sentence, str) else "",
                                      split=split))
        return out

    def image_path(self, expr: Expression) -> str:
        return os.path.join(self.image_dir, expr.image_id + ".jpg")

    def mask_path(self, expr: Expression) -> str:
        return os.path.join(self.mask_dir, expr.ann_id + ".mat")

    def load_image(self, expr: Expression) -> np.ndarray:
        return load_image_file(self.image_path(expr))

    def load_mask(self, expr: Expression) -> np.ndarray:
        return load_referit_mask(self.mask_path(expr))

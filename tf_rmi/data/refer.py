"""Reader of the COCO-based referring sets (RefCOCO, RefCOCO+, RefCOCOg).

Reads the REFER layout directly (no dependency on the REFER toolkit):

    <data_root>/<refcoco|refcoco+|refcocog>/refs(<splitBy>).p
    <data_root>/<refcoco|refcoco+|refcocog>/instances.json
    <image_dir>/COCO_train2014_<image_id zero-padded to 12>.jpg

`refs(<splitBy>).p` is a pickled (Python 2, protocol 2) list of refs, each a
dict with `ref_id`, `ann_id`, `image_id`, `split`, `sentences` (a list of
`{sent, sent_id, tokens, raw}`), `category_id`, `file_name`.
`instances.json` is COCO style: `images` (`id`, `height`, `width`,
`file_name`), `annotations` (`id`, `image_id`, `segmentation` as a list of
polygons or an RLE dict, `bbox`, `category_id`), `categories`.

As the original `build_batches.py`: one expression per (ref, sentence), the
sentence is the ref sentence's `sent` field (REFER's lower-cased form, not
`raw`), the image name is built from the image id, and the mask is the union
of the annotation's polygons (pycocotools `frPyObjects` + `decode`, max over
parts), decoded at the size of the image FILE (the original passes
`im.shape`), and polygons go to `frPyObjects` as they are, short ones
included (`mask_notes` names them). The original iterated a Python 2 dict of refs (arbitrary order); we
keep the file order, refs first and their sentences in order.
"""
from __future__ import annotations

import json
import os
import pickle
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tf_rmi import config
from tf_rmi.data.sources import DataError, Expression, Source

# Dataset flag -> (REFER dataset directory, splitBy), as the original's
# `build_batches.py` (unc, unc+, Gref) plus RefCOCOg's UMD split.
DATASET_FLAGS: Dict[str, Tuple[str, str]] = {
    "unc": ("refcoco", "unc"),
    "unc+": ("refcoco+", "unc"),
    "Gref": ("refcocog", "google"),
    "Gref_umd": ("refcocog", "umd"),
}
_FLAG_FOR_REFER = {value: key for key, value in DATASET_FLAGS.items()}

IMAGE_TYPE = "train2014"  # every RefCOCO* image is a COCO train2014 image
# Candidate image directories relative to data_root, in order of preference:
# the layout this project documents, the REFER toolkit's own layout, and the
# original release's `data/coco/images/train2014`.
IMAGE_DIR_CANDIDATES = (
    os.path.join("images", IMAGE_TYPE),
    os.path.join("images", "mscoco", "images", IMAGE_TYPE),
    os.path.join("coco", "images", IMAGE_TYPE),
)


def coco_image_name(image_id) -> str:
    """`COCO_train2014_<id zero-padded to 12>.jpg`, as the original builds it."""
    return f"COCO_{IMAGE_TYPE}_{str(image_id).zfill(12)}.jpg"


def resolve_dataset(dataset: str, split_by: Optional[str] = None) -> Tuple[str, str, str]:
    """(flag name, REFER directory, splitBy) of a dataset flag or REFER name.

    `resolve_dataset("unc")` -> ("unc", "refcoco", "unc");
    `resolve_dataset("refcocog", "umd")` -> ("Gref_umd", "refcocog", "umd").
    """
    if dataset in DATASET_FLAGS:
        refer_name, default_split_by = DATASET_FLAGS[dataset]
        split_by = split_by or default_split_by
        name = _FLAG_FOR_REFER.get((refer_name, split_by), f"{refer_name}_{split_by}")
        return name, refer_name, split_by
    if dataset in ("refcoco", "refcoco+", "refcocog"):
        if not split_by:
            split_by = "google" if dataset == "refcocog" else "unc"
        name = _FLAG_FOR_REFER.get((dataset, split_by), f"{dataset}_{split_by}")
        return name, dataset, split_by
    raise ValueError(f"Unknown REFER dataset {dataset!r}: use one of "
                     f"{sorted(DATASET_FLAGS)} or refcoco / refcoco+ / refcocog")


def _decode_py2_strings(value: Any) -> Any:
    """Python 2 `str` objects unpickled as bytes -> str (UTF-8).

    Bytes that are not UTF-8 are left as bytes, so the tokenizer reports them
    as an undecodable sentence (a counted skip) instead of inventing text.
    """
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    if isinstance(value, list):
        return [_decode_py2_strings(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_decode_py2_strings(v) for v in value)
    if isinstance(value, dict):
        return {_decode_py2_strings(k): _decode_py2_strings(v) for k, v in value.items()}
    return value


def load_refs(path: str) -> List[Dict[str, Any]]:
    """The list of refs in a `refs(<splitBy>).p` pickle.

    The files were written by Python 2. Strings pickled as `unicode` load
    directly; strings pickled as Python 2 `str` (bytes) are read as bytes and
    decoded as UTF-8 (Python 3's default ASCII decoding would fail on them).
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        refs = pickle.loads(data)
    except UnicodeDecodeError:
        refs = _decode_py2_strings(pickle.loads(data, encoding="bytes"))
    except Exception as err:  # a truncated or foreign file: say which one
        raise ValueError(f"Cannot unpickle the REFER refs file {path}: {err}; "
                         "re-download it from the REFER project") from err
    if not isinstance(refs, list):
        raise ValueError(f"REFER refs file {path} holds a {type(refs).__name__}, "
                         "expected a list of refs")
    return refs


def load_image_file(path: str) -> np.ndarray:
    """uint8 [H,W], [H,W,3] or [H,W,4] pixels of an image file.

    Raises DataError `missing_image` or `unreadable_image` naming the file.
    """
    from PIL import Image  # local: keeps import of the module cheap

    if not os.path.isfile(path):
        raise DataError("missing_image", "image file not found", path)
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in ("L", "RGB", "RGBA"):
                # Palette, CMYK, 16-bit, ...: decode to 8-bit RGB.
                image = image.convert("RGB")
            array = np.asarray(image)
    except (OSError, ValueError, SyntaxError) as err:
        raise DataError("unreadable_image", f"cannot decode image ({err})", path) from None
    if array.dtype != np.uint8 or array.size == 0:
        raise DataError("unreadable_image", f"unsupported pixels {array.dtype} {array.shape}",
                        path)
    return array


def decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """bool [height, width]: the union of a COCO segmentation.

    Polygons (a list of [x0, y0, x1, y1, ...]) go through pycocotools
    `frPyObjects` and `decode` with the maximum over parts, as the original,
    with no check of their own: a part with fewer than 6 coordinates is treated
    as pycocotools treats it (after a first part of more than 4 coordinates,
    every part is a polygon: odd lengths lose the last value, a part of 2-5
    coordinates draws a degenerate polygon, an empty one nothing); a list that
    pycocotools refuses (first part of at most 4 coordinates, which it reads as
    boxes and rejects) raises ValueError (the original stopped there).
    An RLE dict with uncompressed (list) counts goes through `frPyObjects`; one
    with compressed (string) counts is decoded directly. Raises ValueError for
    anything else.
    """
    from pycocotools import mask as cocomask

    if isinstance(segmentation, list):
        if not segmentation:
            raise ValueError("empty polygon list")
        polygons = [list(map(float, polygon)) for polygon in segmentation]
        try:
            rles = cocomask.frPyObjects(polygons, height, width)
        except Exception as err:  # pycocotools raises TypeError, IndexError, bare Exception
            raise ValueError(f"pycocotools frPyObjects refuses the polygons "
                             f"(part lengths {[len(p) for p in polygons]}): {err}") from None
        return np.max(cocomask.decode(rles), axis=2) > 0
    if isinstance(segmentation, dict) and "counts" in segmentation:
        counts = segmentation["counts"]
        size = [int(s) for s in segmentation.get("size", (height, width))]
        if isinstance(counts, list):
            rle = cocomask.frPyObjects(
                {"counts": [int(c) for c in counts], "size": size}, size[0], size[1])
        elif isinstance(counts, (str, bytes)):
            rle = {"counts": counts.encode("ascii") if isinstance(counts, str) else counts,
                   "size": size}
        else:
            raise ValueError(f"RLE counts of type {type(counts).__name__}")
        decoded = cocomask.decode(rle)
        if decoded.ndim == 3:
            decoded = np.max(decoded, axis=2)
        return decoded > 0
    raise ValueError(f"unsupported segmentation of type {type(segmentation).__name__}")


class ReferSource(Source):
    """RefCOCO / RefCOCO+ / RefCOCOg expressions from a REFER data root.

    Args:
      data_root: directory holding `<refcoco|refcoco+|refcocog>/` (REFER's
        `data/`) and, by default, the COCO images.
      dataset: a dataset flag (`unc`, `unc+`, `Gref`, `Gref_umd`) or a REFER
        name (`refcoco`, `refcoco+`, `refcocog`).
      split_by: REFER's splitBy (`unc`, `google`, `umd`); default from `dataset`.
      image_dir: directory of the `COCO_train2014_*.jpg` files. Default: the
        first existing of `<data_root>/images/train2014`,
        `<data_root>/images/mscoco/images/train2014` (REFER's layout) and
        `<data_root>/coco/images/train2014` (the original release's layout).

    Raises FileNotFoundError naming the path when data_root, the refs pickle
    or instances.json is missing.
    """

    # The original uses vocabulary_Gref.txt for every REFER set (config.DATASETS).
    vocab_name = config.dataset_spec("Gref").vocab_file
    # Preprocessing passes the decoded image's (height, width) to `load_mask`.
    masks_follow_image = True

    def __init__(self, data_root: str, dataset: str, split_by: Optional[str] = None,
                 image_dir: Optional[str] = None):
        self.name, self.refer_name, self.split_by = resolve_dataset(dataset, split_by)
        self.data_root = data_root
        if not os.path.isdir(data_root):
            raise FileNotFoundError(
                f"REFER data root {data_root} does not exist: point --data_root at the "
                f"directory holding {self.refer_name}/refs({self.split_by}).p and "
                f"{self.refer_name}/instances.json (REFER's data/ folder), with the COCO "
                f"train2014 images under {IMAGE_DIR_CANDIDATES[0]}")
        self.refs_path = os.path.join(data_root, self.refer_name, f"refs({self.split_by}).p")
        self.instances_path = os.path.join(data_root, self.refer_name, "instances.json")
        for path, what in ((self.refs_path, "the REFER refs pickle"),
                           (self.instances_path, "the COCO-style instances.json")):
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{path} not found: put {what} of {self.refer_name} (splitBy "
                    f"{self.split_by}) there, as downloaded by the REFER project "
                    f"(https://github.com/lichengunc/refer, `data/{self.refer_name}/`)")
        if image_dir is None:
            candidates = [os.path.join(data_root, c) for c in IMAGE_DIR_CANDIDATES]
            image_dir = next((c for c in candidates if os.path.isdir(c)), candidates[0])
        self.image_dir = image_dir

        self._refs = load_refs(self.refs_path)
        self._load_instances(self.instances_path)

    def _load_instances(self, path: str) -> None:
        """Keeps only what masks need: image sizes and the referred annotations."""
        try:
            with open(path, "rb") as f:
                instances = json.load(f)
        except (OSError, ValueError) as err:
            raise ValueError(f"Cannot read {path} as JSON ({err}): re-download the "
                             "REFER instances.json") from err
        if not isinstance(instances, dict) or "annotations" not in instances:
            raise ValueError(f"{path} is not a COCO instances file (no 'annotations')")
        referred = set()
        for ref in self._refs:
            if isinstance(ref, dict) and "ann_id" in ref:
                referred.add(ref["ann_id"])
        self._image_sizes: Dict[Any, Tuple[int, int]] = {}
        for image in instances.get("images", []):
            self._image_sizes[image["id"]] = (int(image["height"]), int(image["width"]))
        self._annotations: Dict[Any, Dict[str, Any]] = {}
        for ann in instances["annotations"]:
            if ann.get("id") in referred:
                self._annotations[ann["id"]] = {"image_id": ann.get("image_id"),
                                                "segmentation": ann.get("segmentation")}

    def splits(self) -> Sequence[str]:
        if self.name in config.DATASETS:
            return config.DATASETS[self.name].splits
        seen: List[str] = []
        for ref in self._refs:
            if ref.get("split") not in seen:
                seen.append(ref.get("split"))
        return tuple(seen)

    def expressions(self, split: str) -> List[Expression]:
        """One Expression per (ref, sentence) of `split`: refs in file order,
        sentences in order. A sentence without `sent` gets "" (counted later
        as an empty sentence)."""
        out = []
        for ref in self._refs:
            if ref.get("split") != split:
                continue
            for j, sentence in enumerate(ref.get("sentences") or []):
                sent_id = sentence.get("sent_id", f"{ref['ref_id']}-{j}")
                out.append(Expression(
                    image_id=str(ref["image_id"]), ref_id=str(ref["ref_id"]),
                    ann_id=str(ref["ann_id"]), sent_id=str(sent_id),
                    sentence=sentence.get("sent", ""), split=split))
        return out

    def image_path(self, expr: Expression) -> str:
        return os.path.join(self.image_dir, coco_image_name(expr.image_id))

    def load_image(self, expr: Expression) -> np.ndarray:
        """uint8 [H,W], [H,W,3] or [H,W,4] as stored (grayscale COCO images
        stay 2-D; preprocessing tiles them with `to_rgb`)."""
        return load_image_file(self.image_path(expr))

    @staticmethod
    def _key(value: str):
        """COCO ids are integers; keep other ids as given."""
        try:
            return int(value)
        except ValueError:
            return value

    def mask_notes(self, expr: Expression) -> List[str]:
        """Degenerate-annotation notes of one expression: ["short_polygon"] when a
        polygon part has fewer than 6 coordinates (decoded as pycocotools does)."""
        ann = self._annotations.get(self._key(expr.ann_id))
        segmentation = ann.get("segmentation") if ann else None
        if isinstance(segmentation, list) and any(
                not isinstance(p, (list, tuple)) or len(p) < 6 for p in segmentation):
            return ["short_polygon"]
        return []

    def load_mask(self, expr: Expression, image_shape: Optional[Tuple[int, int]] = None
                  ) -> np.ndarray:
        """bool [H,W]: polygons decoded at `image_shape` (the image file's
        (height, width), as the original), by default at the size instances.json
        gives the image; an RLE at its own size."""
        where = f"{self.instances_path} annotation {expr.ann_id}"
        ann = self._annotations.get(self._key(expr.ann_id))
        if ann is None:
            raise DataError("missing_annotation",
                            f"ref {expr.ref_id} names annotation {expr.ann_id}, "
                            "which instances.json does not hold", where)
        size = self._image_sizes.get(self._key(expr.image_id))
        if image_shape is not None:
            size = (int(image_shape[0]), int(image_shape[1]))
        if size is None:
            raise DataError("missing_annotation",
                            f"image {expr.image_id} is not in instances.json", where)
        try:
            mask = decode_segmentation(ann["segmentation"], size[0], size[1])
        except (ValueError, TypeError, KeyError) as err:
            raise DataError("invalid_annotation", f"cannot decode segmentation ({err})",
                            where) from None
        return mask

"""Writers of tiny raw datasets in the exact real formats (for tests).

- `write_refer(root, ...)`: REFER layout, `refcoco/refs(unc).p` (a Python 2
  protocol-2 pickle, written byte by byte as Python 2 wrote it),
  `refcoco/instances.json` (COCO style, one two-part polygon annotation, one
  compressed and one uncompressed RLE annotation) and JPEG images
  `images/train2014/COCO_train2014_<12 digits>.jpg` (one grayscale).
- `write_referit(root, ...)`: `referit_query_<split>.json`, `images/<id>.jpg`
  and `mask/<id>_<n>.mat` (`segimg_t`, 0 on the referred region).

Every writer returns the hand-computed expected masks so tests can compare
against something independent of the code under test.
"""
from __future__ import annotations

import json
import os
import struct
from typing import Any, Dict

import numpy as np
from PIL import Image

# ----------------------------------------------------------------------------
# A Python 2 style pickle (protocol 2)


def py2_pickle_dumps(value: Any, strings: str = "str") -> bytes:
    """Protocol-2 pickle of nested lists / dicts / str / int / float / None as
    Python 2 wrote it. With strings="str", text is a Python 2 byte string
    (SHORT_BINSTRING / BINSTRING of its UTF-8 bytes, what Python 2 `str` held);
    with strings="unicode", BINUNICODE."""
    out = bytearray(b"\x80\x02")

    def emit(v: Any) -> None:
        if v is None:
            out.extend(b"N")
        elif isinstance(v, bool):
            out.extend(b"\x88" if v else b"\x89")
        elif isinstance(v, int):
            if 0 <= v < 256:
                out.extend(b"K" + bytes([v]))
            elif -2 ** 31 <= v < 2 ** 31:
                out.extend(b"J" + struct.pack("<i", v))
            else:
                raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
                out.extend(b"\x8a" + bytes([len(raw)]) + raw)
        elif isinstance(v, float):
            out.extend(b"G" + struct.pack(">d", v))
        elif isinstance(v, str):
            raw = v.encode("utf-8")
            if strings == "unicode":
                out.extend(b"X" + struct.pack("<I", len(raw)) + raw)
            elif len(raw) < 256:
                out.extend(b"U" + bytes([len(raw)]) + raw)
            else:
                out.extend(b"T" + struct.pack("<i", len(raw)) + raw)
        elif isinstance(v, list):
            out.extend(b"]")
            if v:
                out.extend(b"(")
                for item in v:
                    emit(item)
                out.extend(b"e")
        elif isinstance(v, dict):
            out.extend(b"}")
            if v:
                out.extend(b"(")
                for key, item in v.items():
                    emit(key)
                    emit(item)
                out.extend(b"u")
        else:
            raise TypeError(f"py2_pickle_dumps cannot write {type(v).__name__}")

    emit(value)
    out.extend(b".")
    return bytes(out)


# ----------------------------------------------------------------------------
# Images


def gradient_image(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth uint8 image (JPEG keeps it close)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = [ys * 3 + xs * 2 + rng.integers(0, 60) for _ in range(channels)]
    image = np.clip(np.stack(base, axis=-1), 0, 255).astype(np.uint8)
    return image[:, :, 0] if channels == 1 else image


def write_jpeg(path: str, array: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format="JPEG", quality=95)


def rect_mask(height: int, width: int, *boxes) -> np.ndarray:
    """bool [height, width], True on rows y0..y1-1, cols x0..x1-1 of each
    (x0, y0, x1, y1) box: COCO's pixel-corner convention for a polygon with
    those integer corners."""
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


def rect_polygon(x0, y0, x1, y1):
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def column_major_counts(mask: np.ndarray) -> list:
    """COCO uncompressed RLE counts, computed by hand: run lengths of the
    column-major flattening, starting with a run of zeros."""
    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    counts, current, run = [], 0, 0
    for value in flat:
        if value == current:
            run += 1
        else:
            counts.append(run)
            current, run = value, 1
    counts.append(run)
    return counts


# ----------------------------------------------------------------------------
# REFER

COCO_PREFIX = "COCO_train2014_"


def coco_image_path(root: str, image_id: int) -> str:
    return os.path.join(root, "images", "train2014", f"{COCO_PREFIX}{image_id:012d}.jpg")


def write_refer(root: str, dataset: str = "refcoco", split_by: str = "unc",
                strings: str = "str", bad: bool = False) -> Dict[str, Any]:
    """Writes a tiny REFER dataset under `root`; returns expectations.

    Clean content: train = ref 1 (two-part polygon on RGB image 1, 2 sentences,
    one non-ASCII) + ref 2 (compressed RLE on grayscale image 2, 1 sentence);
    val = ref 3 (uncompressed RLE on image 3, 2 sentences).

    With `bad`, train also holds one expression per failure: missing image
    file (ref 10), undecodable image bytes (ref 11), annotation absent from
    instances.json (ref 12), an empty sentence (ref 13, beside a good one),
    an empty RLE mask (ref 14), and a one-pixel mask that vanishes when a
    32x32 image is resized to 8x8 (ref 15).
    """
    from pycocotools import mask as cocomask

    sizes = {1: (24, 32), 2: (20, 28), 3: (16, 16)}
    masks = {
        101: rect_mask(24, 32, (2, 3, 10, 8), (20, 10, 30, 20)),
        102: rect_mask(20, 28, (4, 5, 12, 10)),
        103: rect_mask(16, 16, (3, 2, 7, 6)),
    }
    images = {1: gradient_image(24, 32, 3, seed=1), 2: gradient_image(20, 28, 1, seed=2),
              3: gradient_image(16, 16, 3, seed=3)}
    rle_102 = cocomask.encode(np.asfortranarray(masks[102].astype(np.uint8)))
    annotations = [
        {"id": 101, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 0.0,
         "bbox": [2, 3, 28, 17],
         "segmentation": [rect_polygon(2, 3, 10, 8), rect_polygon(20, 10, 30, 20)]},
        {"id": 102, "image_id": 2, "category_id": 1, "iscrowd": 1, "area": 0.0,
         "bbox": [4, 5, 8, 5],
         "segmentation": {"counts": rle_102["counts"].decode("ascii"), "size": [20, 28]}},
        {"id": 103, "image_id": 3, "category_id": 1, "iscrowd": 1, "area": 0.0,
         "bbox": [3, 2, 4, 4],
         "segmentation": {"counts": column_major_counts(masks[103]), "size": [16, 16]}},
    ]

    def ref(ref_id, ann_id, image_id, split, sentences):
        return {"ref_id": ref_id, "ann_id": ann_id, "image_id": image_id, "split": split,
                "category_id": 1, "file_name": f"{COCO_PREFIX}{image_id:012d}_{ann_id}.jpg",
                "sent_ids": [ref_id * 10 + j for j in range(len(sentences))],
                "sentences": [{"sent": s, "raw": s.upper(), "sent_id": ref_id * 10 + j,
                               "tokens": s.split()} for j, s in enumerate(sentences)]}

    refs = [ref(1, 101, 1, "train", ["the boxes on the left", "café table"]),
            ref(2, 102, 2, "train", ["gray thing"]),
            ref(3, 103, 3, "val", ["small square", "the square ."])]
    if bad:
        sizes.update({10: (16, 16), 11: (16, 16), 15: (32, 32)})
        images[15] = gradient_image(32, 32, 3, seed=15)
        annotations += [
            {"id": 110, "image_id": 10, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 4, 4],
             "segmentation": [rect_polygon(0, 0, 4, 4)]},
            {"id": 111, "image_id": 11, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 4, 4],
             "segmentation": [rect_polygon(0, 0, 4, 4)]},
            {"id": 114, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 0, 0],
             "segmentation": {"counts": [24 * 32], "size": [24, 32]}},
            # Pixel (0, 0) only: 32 -> 8 samples input positions 4x + 1.5, which
            # never read column or row 0, so the resized mask is empty.
            {"id": 115, "image_id": 15, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 1, 1],
             "segmentation": {"counts": column_major_counts(rect_mask(32, 32, (0, 0, 1, 1))),
                              "size": [32, 32]}},
        ]
        refs += [ref(10, 110, 10, "train", ["missing image"]),
                 ref(11, 111, 11, "train", ["broken image"]),
                 ref(12, 999, 1, "train", ["no annotation"]),
                 ref(13, 101, 1, "train", ["   ", "fine sentence"]),
                 ref(14, 114, 1, "train", ["empty mask"]),
                 ref(15, 115, 15, "train", ["tiny dot"])]

    base = os.path.join(root, dataset)
    os.makedirs(base, exist_ok=True)  # also creates root
    with open(os.path.join(base, f"refs({split_by}).p"), "wb") as f:
        f.write(py2_pickle_dumps(refs, strings=strings))
    instances = {
        "info": {}, "licenses": [],
        "images": [{"id": i, "height": h, "width": w, "file_name": f"{COCO_PREFIX}{i:012d}.jpg"}
                   for i, (h, w) in sizes.items()],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "thing", "supercategory": "thing"}],
    }
    with open(os.path.join(base, "instances.json"), "w") as f:
        json.dump(instances, f)
    for image_id, image in images.items():
        write_jpeg(coco_image_path(root, image_id), image)
    if bad:
        path = coco_image_path(root, 11)
        with open(path, "wb") as f:
            f.write(b"this is not a JPEG file")
    return {"masks": masks, "sizes": sizes, "images": images, "refs": refs}


# ----------------------------------------------------------------------------
# ReferIt


def write_referit(root: str) -> Dict[str, Any]:
    """Writes a tiny ReferIt dataset: trainval = keys 100_1 (2 sentences),
    100_2 (1), 200_1 (1); test = 300_1 (1). Returns expected masks by key."""
    import scipy.io

    sizes = {"100": (20, 24), "200": (18, 18), "300": (12, 20)}
    masks = {"100_1": rect_mask(20, 24, (2, 2, 8, 9)),
             "100_2": rect_mask(20, 24, (10, 4, 20, 16)),
             "200_1": rect_mask(18, 18, (0, 0, 18, 5)),
             "300_1": rect_mask(12, 20, (5, 3, 15, 9))}
    queries = {"trainval": {"100_1": ["left man", "man on the left"], "100_2": ["sky"],
                            "200_1": ["top part"]},
               "test": {"300_1": ["middle thing"]}}
    os.makedirs(root, exist_ok=True)
    for split, query in queries.items():
        with open(os.path.join(root, f"referit_query_{split}.json"), "w") as f:
            json.dump(query, f)
    for image_id, (h, w) in sizes.items():
        write_jpeg(os.path.join(root, "images", f"{image_id}.jpg"),
                   gradient_image(h, w, 3, seed=int(image_id)))
    os.makedirs(os.path.join(root, "mask"), exist_ok=True)
    for key, mask in masks.items():
        # Region labels as the real files: 0 on the referred region.
        segimg = np.where(mask, 0, 3).astype(np.float64)
        scipy.io.savemat(os.path.join(root, "mask", f"{key}.mat"), {"segimg_t": segimg})
    return {"masks": masks, "sizes": sizes, "queries": queries}

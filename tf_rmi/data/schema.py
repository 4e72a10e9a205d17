"""The TFRecord schema: the one place that knows the feature keys.

One `tf.train.Example` is one referring expression (one (ref, sentence) pair,
as one `.npz` batch file of the original `build_batches.py`):

- the image as a lossless RGB PNG (training records: already resized and
  padded to S x S; evaluation records: the original image);
- the mask as a single-channel PNG with values 0/1, same size as the image;
- the T word ids (int64 list, front-padded with 0), the raw sentence, the
  dataset ids as strings, the original image size, whether the record was
  resized-and-padded, and why the sample is degenerate (comma-separated
  reasons such as `empty_mask`, `mask_size_mismatch`, `short_polygon`; empty for
  a normal sample). Evaluation splits keep degenerate samples and score them as
  the original does; records without the key (schema 1) read as not degenerate.

`SCHEMA_VERSION` (2: the `degenerate` key added) is recorded in the manifest.
`parse_example` uses TensorFlow ops only, so it runs inside `tf.data.map`.
"""
from __future__ import annotations

import io
from typing import Dict, Optional, Sequence, Union

import numpy as np
import tensorflow as tf
from PIL import Image

# Bumped whenever keys or encodings change; the preprocess manifest records it.
SCHEMA_VERSION = 2  # 2: the `degenerate` key
FEATURE_VERSION = SCHEMA_VERSION

IMAGE_KEY = "image/png"
MASK_KEY = "mask/png"
WORDS_KEY = "words"
SENTENCE_KEY = "sentence"
IMAGE_ID_KEY = "image_id"
REF_ID_KEY = "ref_id"
ANN_ID_KEY = "ann_id"
SENT_ID_KEY = "sent_id"
ORIG_HEIGHT_KEY = "orig_height"
ORIG_WIDTH_KEY = "orig_width"
PADDED_KEY = "padded"
DEGENERATE_KEY = "degenerate"

_STRING_KEYS = (SENTENCE_KEY, IMAGE_ID_KEY, REF_ID_KEY, ANN_ID_KEY, SENT_ID_KEY,
                DEGENERATE_KEY)

_FEATURES = {
    IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
    MASK_KEY: tf.io.FixedLenFeature([], tf.string),
    WORDS_KEY: tf.io.VarLenFeature(tf.int64),
    SENTENCE_KEY: tf.io.FixedLenFeature([], tf.string),
    IMAGE_ID_KEY: tf.io.FixedLenFeature([], tf.string),
    REF_ID_KEY: tf.io.FixedLenFeature([], tf.string),
    ANN_ID_KEY: tf.io.FixedLenFeature([], tf.string),
    SENT_ID_KEY: tf.io.FixedLenFeature([], tf.string),
    ORIG_HEIGHT_KEY: tf.io.FixedLenFeature([], tf.int64),
    ORIG_WIDTH_KEY: tf.io.FixedLenFeature([], tf.int64),
    PADDED_KEY: tf.io.FixedLenFeature([], tf.int64),
    DEGENERATE_KEY: tf.io.FixedLenFeature([], tf.string, default_value=b""),
}


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of a uint8 [H,W] or [H,W,3] array."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"encode_png expects uint8, got {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"encode_png expects [H,W] or [H,W,3], got shape {image.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_mask_png(mask: np.ndarray) -> bytes:
    """Single-channel PNG with values 0/1 of a mask [H,W] (non-zero = foreground)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"A mask must be [H,W], got shape {mask.shape}")
    return encode_png((mask != 0).astype(np.uint8))


def decode_png(data: bytes) -> np.ndarray:
    """uint8 array of PNG bytes (numpy side, for tests and tools)."""
    return np.asarray(Image.open(io.BytesIO(data)))


def _bytes(value: Union[str, bytes]) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def make_example(image_png: bytes, mask_png: bytes, word_ids: Sequence[int],
                 sentence: Union[str, bytes], image_id, ref_id, ann_id, sent_id,
                 orig_height: int, orig_width: int, padded: bool,
                 degenerate: Sequence[str] = ()) -> tf.train.Example:
    """One expression as a `tf.train.Example` (see the module docstring).

    Ids may be str or int (stored as UTF-8 strings). `word_ids` is [T].
    `degenerate`: the reasons this sample is degenerate (stored joined by ",";
    the key is omitted when there are none).
    """
    if not image_png or not mask_png:
        raise ValueError("make_example needs non-empty image and mask PNG bytes")
    words = np.asarray(word_ids)
    if words.ndim != 1 or words.size == 0 or not np.issubdtype(words.dtype, np.integer):
        raise ValueError(f"word_ids must be a non-empty 1-D integer sequence, got {word_ids!r}")
    if int(orig_height) < 1 or int(orig_width) < 1:
        raise ValueError(f"Original size must be positive, got {orig_height}x{orig_width}")

    def b(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[_bytes(value)]))

    def i(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    feature = {
        IMAGE_KEY: b(image_png),
        MASK_KEY: b(mask_png),
        WORDS_KEY: i(words.tolist()),
        SENTENCE_KEY: b(sentence),
        IMAGE_ID_KEY: b(image_id),
        REF_ID_KEY: b(ref_id),
        ANN_ID_KEY: b(ann_id),
        SENT_ID_KEY: b(sent_id),
        ORIG_HEIGHT_KEY: i([orig_height]),
        ORIG_WIDTH_KEY: i([orig_width]),
        PADDED_KEY: i([1 if padded else 0]),
    }
    if degenerate:
        if any(not r or "," in r for r in degenerate):
            raise ValueError(f"degenerate reasons must be non-empty and free of commas, "
                             f"got {list(degenerate)!r}")
        feature[DEGENERATE_KEY] = b(",".join(degenerate))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def parse_example(serialized, num_words: Optional[int] = None) -> Dict[str, tf.Tensor]:
    """Parses one serialized example with TensorFlow ops (usable in tf.data.map).

    Returns a dict: `image` uint8 [H,W,3], `mask` uint8 [H,W] with values 0/1
    (any non-zero byte is foreground, so a 0/255 mask reads as 0/1 too),
    `words` int32 [T] (static T when `num_words` is given; a record of another
    length then fails the shape check), `sentence`, `image_id`, `ref_id`,
    `ann_id`, `sent_id` tf.string scalars, `orig_height`, `orig_width` int32
    scalars, `padded` bool scalar, `degenerate` tf.string scalar ("" for a
    normal sample, else comma-separated reasons).
    """
    parsed = tf.io.parse_single_example(serialized, _FEATURES)
    image = tf.io.decode_png(parsed[IMAGE_KEY], channels=3)
    mask = tf.io.decode_png(parsed[MASK_KEY], channels=1)[:, :, 0]
    words = tf.cast(tf.sparse.to_dense(parsed[WORDS_KEY]), tf.int32)
    if num_words is not None:
        words = tf.ensure_shape(words, [num_words])
    out = {
        "image": image,
        # Accept 0/255 masks too: foreground is any non-zero value.
        "mask": tf.cast(mask > 0, tf.uint8),
        "words": words,
        "orig_height": tf.cast(parsed[ORIG_HEIGHT_KEY], tf.int32),
        "orig_width": tf.cast(parsed[ORIG_WIDTH_KEY], tf.int32),
        "padded": tf.not_equal(parsed[PADDED_KEY], 0),
    }
    for key in _STRING_KEYS:
        out[key] = parsed[key]
    return out


def words_length(serialized: bytes) -> int:
    """T of one serialized record, read in Python (for up-front checks)."""
    example = tf.train.Example.FromString(serialized)
    return len(example.features.feature[WORDS_KEY].int64_list.value)


def is_padded(serialized: bytes) -> bool:
    """Whether one serialized record is a resized-and-padded training record."""
    example = tf.train.Example.FromString(serialized)
    return bool(example.features.feature[PADDED_KEY].int64_list.value[0])

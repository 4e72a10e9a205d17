"""Pure-TensorFlow twins of the text and image preprocessing, for serving graphs.

They compute what `tf_rmi.data.text` and `tf_rmi.data.image_ops` compute, so a
SavedModel can take raw bytes and a sentence with no Python code around it:

- `tokenize_and_encode_tf`: the original tokenizer (ASCII `(\\W+)` split keeping
  the separators, pieces non-empty after stripping kept unstripped, lowercase,
  a final exact "." dropped), vocabulary lookup, first T ids, front padding.
- `resize_and_pad_tf` / `inverse_resize_and_pad_tf`: the 2017 skimage bilinear
  resize (half-pixel map evaluated in float64, constant-0 outside, no
  anti-aliasing, output clipped to the input range) and the original's inverse.
"""
from __future__ import annotations

import tensorflow as tf

# RE2 has no ASCII-only \W; this class is its ASCII meaning (every non-ASCII
# character is a separator, as Python 2's `re` without re.UNICODE).
_NON_WORD = "[^A-Za-z0-9_]+"
# Python's str.strip()/str.isspace() whitespace (the Python tokenizer strips
# the sentence and each piece with it); tf.strings.strip knows ASCII only.
# tests/serving/test_graph_ops.py checks this set against str.isspace().
PY_WHITESPACE_CLASS = ("[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x{85}\\x{a0}\\x{1680}"
                       "\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}]")
# Pieces are cut at NUL bytes inserted around every separator run; NUL and the
# escape byte \x01 in the sentence itself are escaped first. All three bytes
# are non-word characters, so escaping never moves a run boundary.
_CUT, _ESC = "\x00", "\x01"


def strip_tf(text: tf.Tensor) -> tf.Tensor:
    """`str.strip()` of UTF-8 strings (Unicode whitespace, as Python 3)."""
    ws = PY_WHITESPACE_CLASS
    return tf.strings.regex_replace(text, f"^{ws}+|{ws}+$", "")


def is_blank_tf(text: tf.Tensor) -> tf.Tensor:
    """bool: `not text.strip()` (empty or whitespace only)."""
    return tf.strings.regex_full_match(text, f"{PY_WHITESPACE_CLASS}*")


def is_valid_utf8_tf(text: tf.Tensor) -> tf.Tensor:
    """bool: whether the bytes are valid UTF-8 (a lossy re-encode leaves them unchanged;
    a genuine U+FFFD in the text survives the round trip unchanged too)."""
    clean = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace",
                                         replacement_char=0xFFFD)
    return tf.equal(clean, text)


def vocab_table(vocab) -> tf.lookup.StaticHashTable:
    """token -> id table with the Python Vocabulary's rules (later duplicate lines
    win; unknown tokens -> <unk>). `vocab` is a `tf_rmi.data.text.Vocabulary`.

    The table is built from constants, not from the file with
    `tf.lookup.TextFileInitializer`: that reads lines unstripped and fails on
    duplicate keys ("." appears twice in vocabulary_Gref.txt)."""
    ids = {}
    for i, token in enumerate(vocab.tokens):
        ids[token] = i
    keys = tf.constant(list(ids.keys()), tf.string)
    values = tf.constant(list(ids.values()), tf.int32)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values),
                                     default_value=vocab.unk_id)


def vocab_table_from_file(path: str) -> tf.lookup.StaticHashTable:
    """`vocab_table` of `tf_rmi.data.text.Vocabulary.from_file(path)`."""
    from tf_rmi.data.text import Vocabulary

    return vocab_table(Vocabulary.from_file(path))


def tokenize_tf(sentence: tf.Tensor) -> tf.Tensor:
    """1-D string tensor: `tf_rmi.data.text.tokenize` of a scalar UTF-8 sentence.

    An empty or whitespace-only sentence gives no tokens (the Python version
    raises EmptySentenceError; the serving graph asserts before calling this).
    """
    text = strip_tf(sentence)
    # Patterns spell the control bytes as RE2 escapes; rewrites hold the bytes.
    text = tf.strings.regex_replace(text, r"\x01", _ESC + "\x02")
    text = tf.strings.regex_replace(text, r"\x00", _ESC + "\x03")
    marked = tf.strings.regex_replace(text, f"({_NON_WORD})", _CUT + "\\1" + _CUT)
    pieces = tf.strings.split(marked, sep=_CUT)
    pieces = tf.boolean_mask(pieces, tf.logical_not(is_blank_tf(pieces)))
    # Lowercase (full Unicode, as str.lower) while NUL is still escaped: the
    # utf-8 lower kernel stops at a NUL byte.
    pieces = tf.strings.lower(pieces, encoding="utf-8")
    pieces = tf.strings.regex_replace(pieces, r"\x01\x03", _CUT)
    pieces = tf.strings.regex_replace(pieces, r"\x01\x02", _ESC)
    n = tf.size(pieces)
    # pieces[-1:] is empty when there are no pieces (no out-of-range index).
    drop_last = tf.reduce_any(tf.equal(pieces[-1:], "."))
    return pieces[:n - tf.cast(drop_last, tf.int32)]


def tokenize_and_encode_tf(sentence: tf.Tensor, table, num_words: int) -> tf.Tensor:
    """int32 [num_words]: first `num_words` ids, front-padded with 0 (<pad>).

    `tf_rmi.data.text.Vocabulary.encode` in the graph; `table` maps token -> id
    (`vocab_table`)."""
    ids = tf.cast(table.lookup(tokenize_tf(sentence)), tf.int32)[:num_words]
    pad = num_words - tf.size(ids)
    return tf.reshape(tf.concat([tf.zeros([pad], tf.int32), ids], 0), [num_words])


def _positions(in_size, out_size, start, count):
    """float64 input positions of output pixels start..start+count-1 (half-pixel map)."""
    x = tf.cast(tf.range(start, start + count), tf.float64)
    return (x + 0.5) * tf.cast(in_size, tf.float64) / tf.cast(out_size, tf.float64) - 0.5


def _gather_constant(image, index, axis):
    """Gathers along `axis`, reading 0 where the index falls outside the image."""
    size = tf.shape(image)[axis]
    index = tf.cast(index, tf.int32)
    inside = tf.logical_and(index >= 0, index < size)
    picked = tf.gather(image, tf.where(inside, index, 0), axis=axis)
    shape = [1, 1, 1]
    shape[axis] = -1
    return picked * tf.reshape(tf.cast(inside, image.dtype), shape)


def skimage_resize_tf(image, out_h, out_w, crop=None):
    """float64 [out_h, out_w, C] (or the crop window): `image_ops.skimage_resize`."""
    if crop is None:
        crop = (0, 0, out_h, out_w)
    top, left, height, width = crop
    in_h, in_w = tf.shape(image)[0], tf.shape(image)[1]
    r = _positions(in_h, out_h, top, height)
    c = _positions(in_w, out_w, left, width)
    r0, r1, c0, c1 = tf.floor(r), tf.math.ceil(r), tf.floor(c), tf.math.ceil(c)
    dr = (r - r0)[:, None, None]
    dc = (c - c0)[None, :, None]
    top_rows, bottom_rows = _gather_constant(image, r0, 0), _gather_constant(image, r1, 0)
    top_v = (1 - dc) * _gather_constant(top_rows, c0, 1) + dc * _gather_constant(top_rows, c1, 1)
    bot_v = (1 - dc) * _gather_constant(bottom_rows, c0, 1) + dc * _gather_constant(bottom_rows, c1, 1)
    out = (1 - dr) * top_v + dr * bot_v
    # skimage 0.13 clips to the input's range, keeping exact zeros (cval) when 0
    # lies outside that range.
    lo, hi = tf.reduce_min(image), tf.reduce_max(image)
    clipped = tf.clip_by_value(out, lo, hi)
    keep_zero = tf.logical_not(tf.logical_and(lo <= 0.0, 0.0 <= hi))
    return tf.where(tf.logical_and(keep_zero, tf.equal(out, 0.0)), out, clipped)


def resize_pad_geometry_tf(h, w, size: int):
    """(new_h, new_w, top, left) as int32 scalars (round half to even, as np.round)."""
    h64, w64 = tf.cast(h, tf.float64), tf.cast(w, tf.float64)
    scale = tf.minimum(size / h64, size / w64)
    new_h = tf.cast(tf.round(h64 * scale), tf.int32)
    new_w = tf.cast(tf.round(w64 * scale), tf.int32)
    return new_h, new_w, (size - new_h) // 2, (size - new_w) // 2


def resize_and_pad_tf(image, size: int):
    """uint8 [size, size, 3] from uint8 [H, W, 3]: `image_ops.resize_and_pad`."""
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    new_h, new_w, top, left = resize_pad_geometry_tf(h, w, size)
    resized = skimage_resize_tf(tf.cast(image, tf.float64) / 255.0, new_h, new_w)
    padded = tf.pad(resized, [[top, size - new_h - top], [left, size - new_w - left], [0, 0]])
    out = tf.cast(tf.clip_by_value(tf.math.rint(padded * 255.0), 0, 255), tf.uint8)
    return tf.reshape(out, [size, size, 3])


def inverse_geometry_tf(size: int, h, w):
    """(resized_h, resized_w, top, left) int32 scalars of the original's inverse:
    the [size, size] map is resized by max(h/size, w/size) (np.round per side)
    and cropped at ((resized - h) // 2, (resized - w) // 2)."""
    h64, w64 = tf.cast(h, tf.float64), tf.cast(w, tf.float64)
    size64 = tf.cast(size, tf.float64)
    scale = tf.maximum(h64 / size64, w64 / size64)
    resized_h = tf.cast(tf.round(size64 * scale), tf.int32)
    resized_w = resized_h  # the map is square
    return resized_h, resized_w, (resized_h - h) // 2, (resized_w - w) // 2


def inverse_resize_values_tf(maps, h, w):
    """float64 [h, w, C] from padded-domain float maps [S, S, C] with the
    inverse geometry (`inverse_geometry_tf`): the continuous values that
    `inverse_resize_and_pad_tf` thresholds at non-zero."""
    size = tf.shape(maps)[0]
    resized_h, resized_w, top, left = inverse_geometry_tf(size, h, w)
    return skimage_resize_tf(tf.cast(maps, tf.float64), resized_h, resized_w,
                             (top, left, h, w))


def inverse_resize_and_pad_tf(pred, h, w):
    """bool [h, w] from a [S, S] 0/1 map: `image_ops.inverse_resize_and_pad`."""
    foreground = tf.cast(tf.not_equal(tf.cast(pred, tf.float32), 0.0), tf.float64)
    values = inverse_resize_values_tf(foreground[:, :, None], h, w)
    return tf.not_equal(values[:, :, 0], 0.0)

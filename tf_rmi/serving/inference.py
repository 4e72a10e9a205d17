"""Inference pre- and post-processing, one owner for every inference path.

Evaluation (`eval_lib`), prediction (`predict`), the figures (`visualize`)
and the exported SavedModel (`export_lib`, through the TensorFlow twins
`*_tf` below) all turn an image and an expression into the model's input, and
the model's output back into a mask, with what this module owns:

- `THRESHOLD`: the original's test-time threshold on the upsampled logits;
- `IMAGE_MAGIC` / `sniff_image_format`: the image formats the SavedModel
  decodes itself (tf.io.decode_image's PNG, JPEG, GIF and BMP), by their
  leading bytes;
- `preprocess_image` / `prepare`: the original's test input, the image
  resized-and-padded to S x S and Caffe-preprocessed, and the expression's
  word ids;
- `logits_to_mask`: the original's prediction, the upsampled logits
  thresholded at `THRESHOLD` and mapped back to the image with the inverse
  resize-and-pad (non-zero rule);
- `unpad_map`: a continuous padded-domain map (probabilities, response maps)
  mapped back with the same inverse geometry as the masks.

Imports numpy and `tf_rmi.data.image_ops` only (TensorFlow lazily, in the
`_tf` twins), so that `tf_rmi.config` can take `THRESHOLD` from here.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np

from tf_rmi.data import image_ops

# The original's test-time threshold on the upsampled logits: its test scores
# the prediction `upsampled logits >= 1e-9`, so a logit exactly at it is
# foreground (in probability, p >= 0.5 up to float rounding). Compared in the
# logits' dtype: for the model's float32 output numpy and TensorFlow both
# round 1e-9 to float32 first.
THRESHOLD = 1e-9

# Leading bytes of the formats tf.io.decode_image reads (the SavedModel's
# decoder); other formats (TIFF, WebP, ...) are decoded with Pillow and sent as PNG.
IMAGE_MAGIC = {"png": b"\x89PNG", "jpeg": b"\xff\xd8\xff", "gif": b"GIF8", "bmp": b"BM"}


def sniff_image_format(data: bytes) -> Optional[str]:
    """'png', 'jpeg', 'gif' or 'bmp' from the leading bytes of an encoded image
    (`IMAGE_MAGIC`), or None for anything else (the SavedModel refuses it)."""
    for name, magic in IMAGE_MAGIC.items():
        if bytes(data[:len(magic)]) == magic:
            return name
    return None


# ------------------------------------------------------------------ input


def preprocess_image(image: np.ndarray, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """(padded uint8 [S,S,3], model input float32 [S,S,3]) for uint8 [H,W(,C)].

    The original's test input: `resize_and_pad` to S = `size` (the padded
    image is what DenseCRF refines on), then RGB -> BGR minus the Caffe mean.
    """
    padded = image_ops.resize_and_pad(image, size)
    return padded, image_ops.caffe_preprocess(padded)


@dataclasses.dataclass
class ModelInput:
    """One image and expression made ready for the model (`prepare`).

    rgb: uint8 [H, W, 3], the image as given (`image_ops.to_rgb`); padded:
    uint8 [S, S, 3]; image: float32 [S, S, 3], the model's image input; words:
    int32 [T], front-padded with 0.
    """

    rgb: np.ndarray
    padded: np.ndarray
    image: np.ndarray
    words: np.ndarray

    @property
    def original_size(self) -> Tuple[int, int]:
        """(H, W): where `logits_to_mask` and `unpad_map` map back to."""
        return self.rgb.shape[0], self.rgb.shape[1]


def prepare(image: np.ndarray, expression: str, vocab, size: int, num_words: int) -> ModelInput:
    """`ModelInput` for uint8 [H,W(,C)] `image` and `expression` (a `Vocabulary`
    encodes its first `num_words` tokens, unknown words as <unk>). Raises
    TypeError for a non-uint8 image, then EmptySentenceError for a blank
    expression, before any resizing."""
    rgb = image_ops.to_rgb(image)
    words = vocab.encode(expression, num_words)
    padded, model_image = preprocess_image(rgb, size)
    return ModelInput(rgb, padded, model_image, words)


# ----------------------------------------------------------------- output


def logits_to_mask(upsampled_logits: np.ndarray, h: int, w: int,
                   threshold: float = THRESHOLD) -> np.ndarray:
    """bool [h, w]: the original's prediction from [S, S] upsampled logits.

    Foreground where the logit is >= `threshold` (a logit exactly at it
    counts), then `image_ops.inverse_resize_and_pad` (the 0/1 map resized by
    max(h/S, w/S), centre crop, non-zero) to the original h x w.
    """
    return image_ops.inverse_resize_and_pad(upsampled_logits >= threshold, h, w)


def unpad_map(padded: np.ndarray, h: int, w: int) -> np.ndarray:
    """float32 [h, w]: a continuous [S, S] padded-domain map mapped back to the
    image with the original's inverse geometry (the whole map resized
    bilinearly as 2017 skimage by max(h/S, w/S), centre crop), as the masks
    and the SavedModel's `probabilities` / `word_response_maps`."""
    padded = np.asarray(padded, np.float64)
    if padded.ndim != 2 or padded.shape[0] != padded.shape[1]:
        raise ValueError(f"A padded-domain map must be [S, S], got shape {padded.shape}")
    size = padded.shape[0]
    resized = int(np.round(size * max(h / size, w / size)))
    crop = ((resized - h) // 2, (resized - w) // 2, h, w)
    return image_ops.skimage_resize(padded, (resized, resized), crop=crop).astype(np.float32)


# ------------------------------------------------- TensorFlow twins (graph)


def preprocess_image_tf(image, size: int):
    """float32 [S,S,3] from a uint8 [H,W,3] tensor: `preprocess_image`'s model
    input in graph ops (`graph_ops.resize_and_pad_tf`, equal to the numpy path)."""
    from tf_rmi.serving import graph_ops

    return image_ops.caffe_preprocess_tf(graph_ops.resize_and_pad_tf(image, size))


def logits_to_mask_tf(upsampled_logits, h, w, threshold: float = THRESHOLD):
    """bool [h, w] from float32 [S, S] upsampled logits: `logits_to_mask` in graph ops."""
    from tf_rmi.serving import graph_ops

    return graph_ops.inverse_resize_and_pad_tf(upsampled_logits >= threshold, h, w)


def unpad_maps_tf(maps, h, w):
    """float32 [K, h, w] from [K, S, S] padded-domain maps: `unpad_map` in graph
    ops (skimage 0.13's bilinear resize, half-pixel centres, then the centre crop)."""
    import tensorflow as tf

    from tf_rmi.serving import graph_ops

    channels_last = tf.transpose(maps, [1, 2, 0])
    values = graph_ops.inverse_resize_values_tf(channels_last, h, w)
    return tf.cast(tf.transpose(values, [2, 0, 1]), tf.float32)

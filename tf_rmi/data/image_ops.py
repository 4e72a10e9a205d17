"""Image and mask geometry, exact to the original release (numpy).

The original (`util/im_processing.py`, `build_batches.py`, `main.py`) resizes
with `skimage.transform.resize` as of 2017 (skimage 0.12/0.13) with its
defaults, which we reproduce operation for operation:

- the image is converted with `img_as_float` (uint8 / 255, float32 -> float64);
- output pixel x samples the input at `x_in = (x_out + 0.5) * in/out - 0.5`
  per axis (half-pixel centres);
- each channel is sampled bilinearly at `(r, c)` from the four pixels
  `floor`/`ceil` of each coordinate, a pixel outside the image reading 0
  (mode 'constant', cval 0); no anti-aliasing;
- the output is clipped to [min, max] of the whole input image, except that,
  when 0 lies outside that range, output values exactly 0 stay 0;
- `img_as_ubyte` maps back: `rint(x * 255)`, clip to [0, 255], uint8.

One thing cannot be reproduced bit for bit by anyone: skimage 0.13 did not
build the half-pixel map directly but *estimated* an `AffineTransform` from
three corner correspondences by SVD, so its matrix carries LAPACK- and
CPU-dependent rounding noise (~1e-16 relative, off-diagonal terms ~1e-16).
That noise decides (a) the rounding of exact .5 ties in `img_as_ubyte` (one
grey level; measured against skimage 0.13.1 + numpy 1.13.3 on this kind of
machine: ~12% of pixels for a 640x480 -> 320x240 halving, <0.1% otherwise)
and (b) whether a mask pixel sampled at an exactly integer input position
gets a ~1e-16 weight from a neighbour, which the `> 0` rule turns into
foreground (integer scales such as 1 or 3, and isolated columns for others).
We evaluate the map exactly as written (see `sample_positions`): platform
independent, and the in-graph TensorFlow twin can equal it bit for bit.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

# Caffe's ImageNet mean in BGR order, as `mu` in the original main.py.
CAFFE_MEAN_BGR = np.array((104.00698793, 116.66876762, 122.67891434), dtype=np.float64)
DEFAULT_SIZE = 320
# The largest image predicted or served (4096 x 4096 pixels): `tf_rmi predict`
# and the SavedModel refuse larger ones from the header, before decoding, so one
# request's memory stays bounded (README "Serving").
MAX_IMAGE_PIXELS = 4096 * 4096


def to_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 [H,W,3] RGB from [H,W], [H,W,1], [H,W,3] or [H,W,4] (alpha dropped).

    Grayscale is tiled to 3 channels, as the original's `np.tile(im, (1,1,3))`.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"to_rgb expects a uint8 image, got {image.dtype}; "
                        "decode images to 8-bit before preprocessing")
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"Unsupported image shape {image.shape}: expected [H,W], "
                         "[H,W,1], [H,W,3] or [H,W,4]")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    return image


def _img_as_float(array: np.ndarray) -> np.ndarray:
    """skimage 0.13 `img_as_float`: uint8 / 255, bool -> 0/1, floats -> float64."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float64)
    raise TypeError(f"Cannot resize an array of dtype {array.dtype}: "
                    "use uint8 images or float/bool masks")


def img_as_ubyte(array: np.ndarray) -> np.ndarray:
    """skimage 0.13 `img_as_ubyte` of a float image in [0, 1]: rint(x*255)."""
    array = np.asarray(array, dtype=np.float64)
    if array.size and (array.min() < -1.0 or array.max() > 1.0):
        raise ValueError("Images of type float must be between -1 and 1.")
    scaled = array * 255
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


def sample_positions(in_size: int, out_size: int, start: int = 0,
                     count: int = None) -> np.ndarray:
    """float64 [count]: input positions sampled by output pixels start.. of one axis.

    skimage's half-pixel map `x_in = (x_out + 0.5) * in / out - 0.5`, evaluated
    in that order in float64, so a position that is mathematically an integer
    (or any representable value) comes out exactly.
    """
    count = out_size - start if count is None else count
    x_out = np.arange(start, start + count, dtype=np.float64)
    return (x_out + 0.5) * float(in_size) / float(out_size) - 0.5


def _bilinear_constant(image: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float64 [len(r),len(c),C]: image [H,W,C] sampled at rows r x columns c.

    Mirrors skimage's `bilinear_interpolation` in mode 'C': neighbours
    floor/ceil of each coordinate, a neighbour outside the image reads 0, and
    the same sequence of float64 operations.
    """
    in_h, in_w, _ = image.shape
    min_r, max_r = np.floor(r), np.ceil(r)
    min_c, max_c = np.floor(c), np.ceil(c)
    dr = (r - min_r)[:, np.newaxis, np.newaxis]
    dc = (c - min_c)[np.newaxis, :, np.newaxis]

    def rows(index):
        inside = (index >= 0) & (index < in_h)
        picked = image[np.where(inside, index, 0).astype(np.intp)]
        return np.where(inside[:, np.newaxis, np.newaxis], picked, 0.0)

    def cols(block, index):
        inside = (index >= 0) & (index < in_w)
        picked = block[:, np.where(inside, index, 0).astype(np.intp)]
        return np.where(inside[np.newaxis, :, np.newaxis], picked, 0.0)

    top_rows, bottom_rows = rows(min_r), rows(max_r)
    top = (1 - dc) * cols(top_rows, min_c) + dc * cols(top_rows, max_c)
    bottom = (1 - dc) * cols(bottom_rows, min_c) + dc * cols(bottom_rows, max_c)
    return (1 - dr) * top + dr * bottom


def _clip_like_skimage(input_image: np.ndarray, output: np.ndarray) -> None:
    """skimage 0.13 `_clip_warp_output` with clip=True, mode 'constant', cval 0."""
    min_val = input_image.min()
    max_val = input_image.max()
    preserve_cval = not (min_val <= 0 <= max_val)
    if preserve_cval:
        cval_mask = output == 0
    np.clip(output, min_val, max_val, out=output)
    if preserve_cval:
        output[cval_mask] = 0


def skimage_resize(array: np.ndarray, output_shape: Tuple[int, int],
                   crop: Tuple[int, int, int, int] = None) -> np.ndarray:
    """2017 `skimage.transform.resize(array, output_shape)` with its defaults.

    Args:
      array: [H,W] or [H,W,C]; uint8 (scaled to [0,1]), bool or float.
      output_shape: (out_h, out_w).
      crop: optional (top, left, height, width) window of the output to
        compute (the values equal those of the full output in that window).
    Returns:
      float64 [out_h,out_w] or [out_h,out_w,C] (or the crop window's size).
    """
    out_h, out_w = int(output_shape[0]), int(output_shape[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(f"Cannot resize to {output_shape}: both sides must be >= 1")
    image = _img_as_float(array)
    if image.ndim not in (2, 3) or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"Cannot resize an array of shape {image.shape}: expected [H,W] or [H,W,C]")
    squeeze = image.ndim == 2
    if squeeze:
        image = image[:, :, np.newaxis]
    top, left, height, width = crop if crop is not None else (0, 0, out_h, out_w)
    r = sample_positions(image.shape[0], out_h, top, height)
    c = sample_positions(image.shape[1], out_w, left, width)
    out = _bilinear_constant(image, r, c)
    _clip_like_skimage(image, out)
    return out[:, :, 0] if squeeze else out


def resize_pad_geometry(h: int, w: int, size: int = DEFAULT_SIZE) -> Tuple[int, int, int, int]:
    """(new_h, new_w, top, left) of the original's `resize_and_pad`.

    scale = min(size/h, size/w); new = round-half-even(side*scale) (np.round);
    offsets floor((size - new) / 2). Raises ValueError for an empty image or
    one so thin that a side would round to 0 pixels.
    """
    if h < 1 or w < 1:
        raise ValueError(f"Image of size {h}x{w} is empty")
    scale = min(size / h, size / w)
    new_h = int(np.round(h * scale))
    new_w = int(np.round(w * scale))
    if new_h < 1 or new_w < 1:
        raise ValueError(f"Image of size {h}x{w} is too thin to resize to {size}: "
                         f"its short side would become {min(new_h, new_w)} pixels")
    return new_h, new_w, (size - new_h) // 2, (size - new_w) // 2


def _resize_and_pad_float(array: np.ndarray, size: int) -> np.ndarray:
    """float64 [size,size(,C)]: resized as skimage, pasted in a zero canvas."""
    new_h, new_w, top, left = resize_pad_geometry(array.shape[0], array.shape[1], size)
    resized = skimage_resize(array, (new_h, new_w))
    canvas = np.zeros((size, size) + resized.shape[2:], dtype=np.float64)
    canvas[top:top + new_h, left:left + new_w, ...] = resized
    return canvas


def resize_and_pad(image: np.ndarray, size: int = DEFAULT_SIZE) -> np.ndarray:
    """uint8 [size,size,3]: the original training/test input image.

    `img_as_ubyte(resize_and_pad(im))` of the original; grayscale and RGBA
    images go through `to_rgb` first (tiling before or after the per-channel
    resize gives the same values).
    """
    return img_as_ubyte(_resize_and_pad_float(to_rgb(image), size))


def resize_and_pad_mask(mask: np.ndarray, size: int = DEFAULT_SIZE) -> np.ndarray:
    """bool [size,size]: the mask as float 0/1 resized and padded, then > 0."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"A mask must be [H,W], got shape {mask.shape}")
    return _resize_and_pad_float((mask != 0).astype(np.float32), size) > 0


def inverse_resize_and_pad(pred: np.ndarray, h: int, w: int) -> np.ndarray:
    """bool [h,w]: a [size,size] prediction mapped back to the original image.

    The original's `resize_and_crop(pred, h, w)`: scale = max(h/size, w/size),
    resize the whole padded map to round(size*scale) on each side, crop the
    centre window at floor((resized - h) / 2), foreground = non-zero.
    """
    pred = np.asarray(pred)
    if pred.ndim != 2:
        raise ValueError(f"A prediction must be [size,size], got shape {pred.shape}")
    if h < 1 or w < 1:
        raise ValueError(f"Cannot map a prediction back to an empty image {h}x{w}")
    in_h, in_w = pred.shape
    scale = max(h / in_h, w / in_w)
    resized_h = int(np.round(in_h * scale))
    resized_w = int(np.round(in_w * scale))
    crop_top = (resized_h - h) // 2
    crop_left = (resized_w - w) // 2
    values = skimage_resize((pred != 0).astype(np.float32), (resized_h, resized_w),
                            crop=(crop_top, crop_left, h, w))
    return values != 0


def caffe_preprocess(rgb: np.ndarray) -> np.ndarray:
    """float32 [...,H,W,3]: RGB -> BGR minus the Caffe mean, no scaling.

    As the original's `im.astype(float32)[:, :, ::-1]; im -= mu`: the
    subtraction runs in float64 (mu is float64) and is stored as float32.
    """
    rgb = np.asarray(rgb)
    if rgb.shape[-1] != 3:
        raise ValueError(f"caffe_preprocess expects [...,3] RGB, got shape {rgb.shape}")
    bgr = rgb[..., ::-1].astype(np.float32).astype(np.float64)
    return (bgr - CAFFE_MEAN_BGR).astype(np.float32)


def caffe_preprocess_tf(rgb):
    """TensorFlow twin of `caffe_preprocess` for tf.data / serving graphs.

    Args: rgb: uint8 or float tensor [...,H,W,3]. Returns float32 [...,H,W,3].
    """
    import tensorflow as tf  # imported lazily: the numpy ops need no TensorFlow

    rgb = tf.convert_to_tensor(rgb)
    bgr = tf.cast(tf.cast(tf.reverse(rgb, axis=[-1]), tf.float32), tf.float64)
    return tf.cast(bgr - tf.constant(CAFFE_MEAN_BGR, tf.float64), tf.float32)

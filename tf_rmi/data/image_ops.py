"""Image and mask geometry, exact to the original release (numpy).

The original (`util/im_processing.py`, `build_batches.py`, `main.py`) resizes
with `skimage.transform.resize` as of 2017 (skimage 0.12/0.13) with its
defaults, which we reproduce operation for operation:

- the image is converted with `img_as_float` (uint8 / 255, float32 -> float64);
- the output->input map is an `AffineTransform` *estimated* (least squares via
  SVD, after Hartley normalisation) from three corner correspondences
  `x_in = (x_out + 0.5) * in/out - 0.5`; we estimate it the same way so the
  last bits of the sample positions, and with them the rounding of ties, agree;
- each channel is sampled bilinearly at `(r, c)` from the four pixels
  `floor`/`ceil` of each coordinate, a pixel outside the image reading 0
  (mode 'constant', cval 0); no anti-aliasing;
- the output is clipped to [min, max] of the whole input image, except that,
  when 0 lies outside that range, output values exactly 0 stay 0;
- `img_as_ubyte` maps back: `rint(x * 255)`, clip to [0, 255], uint8.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

# Caffe's ImageNet mean in BGR order, as `mu` in the original main.py.
CAFFE_MEAN_BGR = np.array((104.00698793, 116.66876762, 122.67891434), dtype=np.float64)
DEFAULT_SIZE = 320


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


def _center_and_normalize_points(points: np.ndarray):
    """Hartley normalisation as skimage 0.13 `_center_and_normalize_points`."""
    centroid = np.mean(points, axis=0)
    rms = math.sqrt(np.sum((points - centroid) ** 2) / points.shape[0])
    norm_factor = math.sqrt(2) / rms
    matrix = np.array([[norm_factor, 0, -norm_factor * centroid[0]],
                       [0, norm_factor, -norm_factor * centroid[1]],
                       [0, 0, 1]])
    pointsh = np.vstack([points.T, np.ones((points.shape[0],))])
    new_pointsh = np.dot(matrix, pointsh).T
    new_points = new_pointsh[:, :2]
    new_points[:, 0] /= new_pointsh[:, 2]
    new_points[:, 1] /= new_pointsh[:, 2]
    return matrix, new_points


def _estimate_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """[3,3] affine map src (x, y) -> dst, estimated as skimage 0.13 does."""
    src_matrix, src = _center_and_normalize_points(src)
    dst_matrix, dst = _center_and_normalize_points(dst)
    xs, ys, xd, yd = src[:, 0], src[:, 1], dst[:, 0], dst[:, 1]
    n = src.shape[0]
    a = np.zeros((n * 2, 9))
    a[:n, 0] = xs
    a[:n, 1] = ys
    a[:n, 2] = 1
    a[:n, 6] = -xd * xs
    a[:n, 7] = -xd * ys
    a[n:, 3] = xs
    a[n:, 4] = ys
    a[n:, 5] = 1
    a[n:, 6] = -yd * xs
    a[n:, 7] = -yd * ys
    a[:n, 8] = xd
    a[n:, 8] = yd
    coeffs = [0, 1, 2, 3, 4, 5, 8]
    a = a[:, coeffs]
    _, _, v = np.linalg.svd(a)
    h = np.zeros((3, 3))
    h.flat[coeffs[:-1]] = -v[-1, :-1] / v[-1, -1]
    h[2, 2] = 1
    return np.dot(np.linalg.inv(dst_matrix), np.dot(h, src_matrix))


def resize_matrix(in_h: int, in_w: int, out_h: int, out_w: int) -> np.ndarray:
    """[3,3] map from output (col, row, 1) to input (col, row, 1) of the resize.

    As skimage 0.13 `resize`: a pure translation for a 1x1 output, otherwise
    the transform estimated from three output corners. For a 1-pixel-thin
    output (where those corners are collinear and the estimate is undefined)
    the exact half-pixel map is used instead.
    """
    col_scale = float(in_w) / out_w
    row_scale = float(in_h) / out_h
    if out_h == 1 or out_w == 1:
        return np.array([[col_scale, 0.0, 0.5 * col_scale - 0.5],
                         [0.0, row_scale, 0.5 * row_scale - 0.5],
                         [0.0, 0.0, 1.0]])
    src = np.array([[1, 1], [1, out_h], [out_w, out_h]]) - 1
    dst = np.zeros(src.shape, dtype=np.float64)
    dst[:, 0] = col_scale * (src[:, 0] + 0.5) - 0.5
    dst[:, 1] = row_scale * (src[:, 1] + 0.5) - 0.5
    return _estimate_affine(src, dst)


def _warp_bilinear(image: np.ndarray, matrix: np.ndarray, rows: np.ndarray,
                   cols: np.ndarray) -> np.ndarray:
    """Samples float64 image [H,W,C] at output pixels rows x cols (1-D index arrays).

    Mirrors skimage's `_warp_fast` + `bilinear_interpolation` with mode 'C':
    the same sequence of float64 operations, vectorised.
    """
    in_h, in_w, channels = image.shape
    out_c, out_r = np.meshgrid(cols.astype(np.float64), rows.astype(np.float64))
    m = matrix
    c = m[0, 0] * out_c + m[0, 1] * out_r + m[0, 2]
    r = m[1, 0] * out_c + m[1, 1] * out_r + m[1, 2]
    z = m[2, 0] * out_c + m[2, 1] * out_r + m[2, 2]
    c = c / z
    r = r / z
    min_r = np.floor(r)
    min_c = np.floor(c)
    max_r = np.ceil(r)
    max_c = np.ceil(c)
    dr = (r - min_r)[..., np.newaxis]
    dc = (c - min_c)[..., np.newaxis]
    flat = image.reshape(in_h * in_w, channels)

    def pixel(rr, cc):
        # Outside the image reads cval = 0 (mode 'constant').
        inside = (rr >= 0) & (rr < in_h) & (cc >= 0) & (cc < in_w)
        index = (np.where(inside, rr, 0) * in_w + np.where(inside, cc, 0)).astype(np.intp)
        return np.where(inside[..., np.newaxis], flat[index], 0.0)

    top = (1 - dc) * pixel(min_r, min_c) + dc * pixel(min_r, max_c)
    bottom = (1 - dc) * pixel(max_r, min_c) + dc * pixel(max_r, max_c)
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
    matrix = resize_matrix(image.shape[0], image.shape[1], out_h, out_w)
    out = _warp_bilinear(image, matrix, np.arange(top, top + height),
                         np.arange(left, left + width))
    _clip_like_skimage(image, out)
    return out[:, :, 0] if squeeze else out


def resize_pad_geometry(h: int, w: int, size: int = DEFAULT_SIZE) -> Tuple[int, int, int, int]:
    """(new_h, new_w, top, left) of the original's `resize_and_pad`.

    scale = min(size/h, size/w); new = round-half-even(side*scale) (np.round);
    offsets floor((size - new) / 2).
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

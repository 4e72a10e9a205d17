"""Image geometry follows 2017 skimage.transform.resize and the original's pad/crop."""
import math

import numpy as np
import pytest

from tf_rmi.data import image_ops


def reference_resize(image, out_h, out_w):
    """Per-pixel evaluation of the documented rule, written independently.

    Source position (i + 0.5) * in / out - 0.5 per axis, bilinear between the
    two neighbouring pixels per axis, pixels outside the image read 0, then
    clip to the input's [min, max] keeping exact zeros when 0 is outside it.
    """
    image = np.asarray(image, dtype=np.float64)
    squeeze = image.ndim == 2
    if squeeze:
        image = image[:, :, None]
    in_h, in_w, channels = image.shape
    out = np.zeros((out_h, out_w, channels))

    def read(rr, cc, ch):
        if 0 <= rr < in_h and 0 <= cc < in_w:
            return image[rr, cc, ch]
        return 0.0

    for i in range(out_h):
        for j in range(out_w):
            r = (i + 0.5) * in_h / out_h - 0.5
            c = (j + 0.5) * in_w / out_w - 0.5
            r0, c0 = math.floor(r), math.floor(c)
            wr, wc = r - r0, c - c0
            for ch in range(channels):
                out[i, j, ch] = ((1 - wr) * ((1 - wc) * read(r0, c0, ch) + wc * read(r0, c0 + 1, ch))
                                 + wr * ((1 - wc) * read(r0 + 1, c0, ch) + wc * read(r0 + 1, c0 + 1, ch)))
    lo, hi = image.min(), image.max()
    zeros = out == 0
    out = np.clip(out, lo, hi)
    if not lo <= 0 <= hi:
        out[zeros] = 0
    return out[:, :, 0] if squeeze else out


@pytest.mark.parametrize("in_shape,out_shape", [
    ((5, 7), (3, 4)),      # downscale
    ((4, 4), (9, 6)),      # upscale: borders interpolate toward the outside 0
    ((6, 5, 2), (4, 8)),   # channels, mixed
    ((3, 9), (3, 9)),      # identity
    ((1, 1), (4, 4)),
])
def test_skimage_resize_matches_per_pixel_reference(in_shape, out_shape):
    rng = np.random.default_rng(1)
    image = rng.uniform(0.0, 1.0, in_shape)
    got = image_ops.skimage_resize(image, out_shape)
    np.testing.assert_allclose(got, reference_resize(image, *out_shape), rtol=0, atol=1e-12)


# Golden values printed by scikit-image 0.13.1 (numpy 1.13.3, Python 3.6):
# skimage.transform.resize(image, shape, mode='constant') and img_as_ubyte.
GOLDEN_IMAGE = np.array([[12, 200, 37, 90, 255], [0, 64, 128, 33, 7],
                         [250, 19, 77, 140, 66], [5, 180, 222, 99, 43]], np.uint8)
GOLDEN_DOWN_7x3 = np.array([
    [0.23006535947712486, 0.11400560224089652, 0.61624649859943925],
    [0.21811391223155957, 0.27254901960784345, 0.52614379084967233],
    [0.0985994397759104, 0.47647058823529398, 0.1130718954248367],
    [0.38104575163398702, 0.40196078431372517, 0.20849673202614435],
    [0.64771241830065429, 0.34257703081232438, 0.34743230625583665],
    [0.40196078431372556, 0.66750700280111974, 0.28244631185807756],
    [0.19514472455648854, 0.68403361344537805, 0.19000933706816139]])
GOLDEN_CLIP_IMAGE = np.array([[60, 90, 200], [70, 255, 120], [99, 81, 150]], np.uint8)
GOLDEN_CLIP_5x4 = np.array([
    [0.23529411764705882, 0.24705882352941178, 0.41176470588235259, 0.54901960784313752],
    [0.23529411764705882, 0.47647058823529392, 0.62941176470588223, 0.57647058823529451],
    [0.24019607843137253, 0.7279411764705882, 0.80147058823529393, 0.41176470588235337],
    [0.2999019607843138, 0.49764705882352966, 0.57205882352941206, 0.47352941176470581],
    [0.27176470588235335, 0.27529411764705902, 0.33529411764705924, 0.41176470588235353]])
GOLDEN_CLIP_5x4_UBYTE = np.array([[60, 63, 105, 140], [60, 121, 160, 147], [61, 186, 204, 105],
                                  [76, 127, 146, 121], [69, 70, 86, 105]], np.uint8)


def test_matches_skimage_0_13_golden_values():
    got = image_ops.skimage_resize(GOLDEN_IMAGE, (7, 3))
    np.testing.assert_allclose(got, GOLDEN_DOWN_7x3, rtol=0, atol=1e-12)


def test_matches_skimage_0_13_golden_values_with_clip_and_ubyte():
    got = image_ops.skimage_resize(GOLDEN_CLIP_IMAGE, (5, 4))
    np.testing.assert_allclose(got, GOLDEN_CLIP_5x4, rtol=0, atol=1e-12)
    ubyte = image_ops.img_as_ubyte(got).astype(int)
    # Exact .5 ties (121.5, 160.5 and 85.5 here) round by skimage's matrix noise,
    # which no implementation reproduces; elsewhere the bytes agree.
    scaled = GOLDEN_CLIP_5x4 * 255
    tie = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-9
    assert tie.sum() == 3
    np.testing.assert_array_equal(ubyte[~tie], GOLDEN_CLIP_5x4_UBYTE[~tie])
    assert np.abs(ubyte[tie] - GOLDEN_CLIP_5x4_UBYTE[tie]).max() <= 1


def test_upscale_is_clipped_to_input_range():
    image = np.array([[0.2, 0.8], [0.6, 0.4]])
    got = image_ops.skimage_resize(image, (6, 6))
    # Without the clip the border would fall toward 0; skimage clips it to 0.2.
    assert got.min() == pytest.approx(0.2)
    np.testing.assert_allclose(got, reference_resize(image, 6, 6), atol=1e-12)


def test_uint8_input_is_scaled_to_unit_range():
    image = np.array([[0, 255], [51, 102]], dtype=np.uint8)
    got = image_ops.skimage_resize(image, (2, 2))
    np.testing.assert_allclose(got, image / 255.0, atol=1e-12)


def test_img_as_ubyte_rounds_to_nearest_not_truncates():
    got = image_ops.img_as_ubyte(np.array([0.0, 0.5, 0.7 / 255, 1.0]))
    assert got.tolist() == [0, 128, 1, 255]  # 127.5 -> 128 (rint), 0.7 -> 1


@pytest.mark.parametrize("h,w,expected", [
    (480, 640, (240, 320, 40, 0)),
    (640, 480, (320, 240, 0, 40)),
    (100, 320, (100, 320, 110, 0)),
    (333, 500, (213, 320, 53, 0)),
    (1, 1, (320, 320, 0, 0)),
    (320, 320, (320, 320, 0, 0)),
    (5, 640, (2, 320, 159, 0)),  # 2.5 rounds half to even (np.round)
])
def test_resize_pad_geometry(h, w, expected):
    assert image_ops.resize_pad_geometry(h, w) == expected


def test_too_thin_image_raises_clear_error():
    with pytest.raises(ValueError, match="too thin"):
        image_ops.resize_pad_geometry(1, 1000)


def test_resize_and_pad_of_320_square_is_identity():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (320, 320, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_ops.resize_and_pad(image), image)


def test_resize_and_pad_pastes_at_floor_offsets():
    rng = np.random.default_rng(3)
    image = rng.integers(1, 256, (7, 11, 3), dtype=np.uint8)
    out = image_ops.resize_and_pad(image, size=16)
    new_h, new_w, top, left = image_ops.resize_pad_geometry(7, 11, 16)
    assert (new_h, new_w, top, left) == (10, 16, 3, 0)
    expected = np.rint(reference_resize(image / 255.0, new_h, new_w) * 255)
    np.testing.assert_allclose(out[top:top + new_h, left:left + new_w], expected, atol=1)
    assert not out[:top].any() and not out[top + new_h:].any()
    assert out.dtype == np.uint8 and out.shape == (16, 16, 3)


def test_resize_and_pad_tiles_grayscale():
    rng = np.random.default_rng(4)
    gray = rng.integers(0, 256, (9, 6), dtype=np.uint8)
    out = image_ops.resize_and_pad(gray, size=12)
    np.testing.assert_array_equal(out, image_ops.resize_and_pad(np.dstack([gray] * 3), size=12))


def test_mask_foreground_is_any_positive_interpolated_value():
    rng = np.random.default_rng(5)
    mask = rng.uniform(size=(7, 5)) > 0.7
    out = image_ops.resize_and_pad_mask(mask, size=16)
    new_h, new_w, top, left = image_ops.resize_pad_geometry(7, 5, 16)
    expected = np.zeros((16, 16), bool)
    values = reference_resize(mask.astype(float), new_h, new_w)
    expected[top:top + new_h, left:left + new_w] = values > 0
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.bool_
    # Soft boundary values (strictly between 0 and 1) count as foreground.
    assert ((values > 0) & (values < 1)).any()


def test_mask_positions_on_exact_integers_give_no_neighbour_weight():
    # 5 -> 11 columns samples output column 5 at exactly input column 2.0.
    mask = np.zeros((7, 5))
    mask[:, 3] = 1
    values = image_ops.skimage_resize(mask, (16, 11))
    np.testing.assert_array_equal(values > 0, reference_resize(mask, 16, 11) > 0)
    assert not values[:, 5].any()


def test_sample_positions_are_half_pixel_centres():
    np.testing.assert_allclose(image_ops.sample_positions(640, 320), np.arange(320) * 2 + 0.5)
    np.testing.assert_allclose(image_ops.sample_positions(4, 8, start=2, count=3),
                               [0.75, 1.25, 1.75])


@pytest.mark.parametrize("h,w", [(480, 640), (640, 480), (333, 500), (100, 320), (427, 640)])
def test_inverse_resize_and_pad_recovers_a_blob(h, w):
    yy, xx = np.mgrid[:h, :w]
    blob = ((yy - h * 0.45) / (h * 0.3)) ** 2 + ((xx - w * 0.55) / (w * 0.25)) ** 2 < 1
    back = image_ops.inverse_resize_and_pad(image_ops.resize_and_pad_mask(blob), h, w)
    assert back.shape == (h, w) and back.dtype == np.bool_
    iou = np.logical_and(back, blob).sum() / np.logical_or(back, blob).sum()
    assert iou > 0.95


def test_inverse_crops_the_centre_of_the_resized_map():
    pred = np.zeros((8, 8))
    pred[:, 4:] = 1  # right half
    # scale = max(4/8, 16/8) = 2 -> 16x16, crop rows floor((16-4)/2) = 6.
    back = image_ops.inverse_resize_and_pad(pred, 4, 16)
    full = reference_resize(pred, 16, 16)[6:10, :] != 0
    np.testing.assert_array_equal(back, full)


def test_to_rgb_cases():
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(image_ops.to_rgb(gray), np.stack([gray] * 3, -1))
    np.testing.assert_array_equal(image_ops.to_rgb(gray[..., None]), np.stack([gray] * 3, -1))
    rgba = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(image_ops.to_rgb(rgba), rgba[..., :3])
    rgb = rgba[..., :3].copy()
    np.testing.assert_array_equal(image_ops.to_rgb(rgb), rgb)


def test_to_rgb_rejects_bad_input():
    with pytest.raises(TypeError, match="uint8"):
        image_ops.to_rgb(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="shape"):
        image_ops.to_rgb(np.zeros((2, 2, 2), np.uint8))


def test_caffe_preprocess_values():
    rgb = np.array([[[10, 20, 30]]], dtype=np.uint8)
    got = image_ops.caffe_preprocess(rgb)
    assert got.dtype == np.float32
    expected = np.float32([30 - 104.00698793, 20 - 116.66876762, 10 - 122.67891434])
    np.testing.assert_array_equal(got[0, 0], expected)


def test_caffe_preprocess_tf_equals_numpy():
    rng = np.random.default_rng(6)
    rgb = rng.integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    got = image_ops.caffe_preprocess_tf(rgb).numpy()
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, image_ops.caffe_preprocess(rgb))

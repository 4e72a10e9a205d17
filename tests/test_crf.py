"""DenseCRF with the original settings sharpens a blurred map of a synthetic scene."""
import numpy as np
from scipy import ndimage

from tf_rmi import metrics
from tf_rmi.crf import crf_refine


def test_crf_raises_iou_on_a_blurred_probability_map():
    rng = np.random.RandomState(0)
    size = 96
    image = (rng.rand(size, size, 3) * 60 + 40).astype(np.uint8)   # textured background
    gt = np.zeros((size, size), bool)
    gt[30:62, 22:70] = True
    image[gt] = (200, 40, 40)                                       # a red rectangle
    blurred = ndimage.gaussian_filter(gt.astype(float), 6)
    prob = np.clip(0.15 + 0.7 * blurred + rng.randn(size, size) * 0.08, 0.01, 0.99)
    prob = ndimage.shift(prob, (0, 5), mode="nearest")              # also misplaced a bit
    before = metrics.iou(*metrics.intersection_and_union(prob > 0.5, gt))
    after = metrics.iou(*metrics.intersection_and_union(crf_refine(image, prob), gt))
    assert after > before + 0.03, (before, after)


def test_crf_returns_a_bool_map_of_the_input_size():
    image = np.zeros((16, 20, 3), np.uint8)
    out = crf_refine(image, np.full((16, 20), 0.9))
    assert out.shape == (16, 20) and out.dtype == bool and out.all()

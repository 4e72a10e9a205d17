"""DenseCRF with the original settings (pydensecrf), on synthetic maps."""
import numpy as np
import pytest
from scipy import ndimage

from tf_rmi.evaluation import metrics
from tf_rmi.evaluation.crf import crf_refine, unary_energies


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
    out = crf_refine(image, np.full((16, 20), 0.9, np.float32))
    assert out.shape == (16, 20) and out.dtype == bool and out.all()


def test_unary_is_the_unclipped_float32_negative_log():
    unary = unary_energies(np.array([[0.0, 0.25], [0.5, 1.0]], np.float32))
    assert unary.dtype == np.float32 and unary.shape == (2, 4)
    np.testing.assert_allclose(unary[:, 1:3], -np.log([[0.75, 0.5], [0.25, 0.5]]), rtol=1e-6)
    assert unary[1, 0] == np.inf and unary[0, 0] == 0      # p = 0: foreground impossible
    assert unary[0, 3] == np.inf and unary[1, 3] == 0      # p = 1: background impossible


def _lone_pixel(p_centre):
    """A uniform image, background-confident map, one pixel at `p_centre`."""
    prob = np.full((16, 16), 0.01, np.float32)
    prob[8, 8] = p_centre
    return crf_refine(np.full((16, 16, 3), 90, np.uint8), prob)


def test_saturated_probability_locks_its_label_as_the_original():
    # The original's -log(1 - 1.0) is infinite: no pairwise message can move it.
    out = _lone_pixel(1.0)
    assert out[8, 8] and out.sum() == 1


def test_confident_but_finite_probability_is_smoothed_away():
    # Same scene with a finite unary (-log(1 - 0.999) = 6.9): the neighbours'
    # pairwise terms (compat 3 + 10, normalised kernels) outweigh it.
    assert not _lone_pixel(0.999).any()


@pytest.mark.parametrize("prob", [np.full((8, 8), np.nan), np.full((8, 8), 1.5)])
def test_invalid_probabilities_are_refused(prob):
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        crf_refine(np.zeros((8, 8, 3), np.uint8), prob)


def test_non_uint8_image_is_refused():
    with pytest.raises(ValueError, match="uint8"):
        crf_refine(np.zeros((8, 8, 3), np.float32), np.full((8, 8), 0.5))


def test_probabilities_are_the_float32_sigmoid_that_saturates_as_the_original():
    from tf_rmi.evaluation.crf import sigmoid_probabilities

    logits = np.array([[16.7, 17.0, 17.3], [-89.0, 0.0, 2.0]], np.float32)
    prob = sigmoid_probabilities(logits)
    assert prob.dtype == np.float32
    assert (prob[0] == 1.0).all() and prob[1, 0] == 0.0
    unary = unary_energies(prob)
    # The original's -log(1 - p) is infinite here; a float64 sigmoid gives about 17.
    assert np.isinf(unary[0, :3]).all() and np.isinf(unary[1, 3])
    p64 = 1 / (1 + np.exp(-logits.astype(np.float64)))
    assert np.isfinite(-np.log(1 - p64[0])).all()
    np.testing.assert_allclose(prob[1, 1:], [0.5, 1 / (1 + np.exp(-2.0))], rtol=1e-6)


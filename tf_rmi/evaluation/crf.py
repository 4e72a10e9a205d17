"""DenseCRF post-processing with the original release's settings (pydensecrf).

The original (`main.py`, `test(..., dcrf=True)`) builds, per expression,
`DenseCRF2D(W, H, 2)` on the 320x320 padded image, with the unary energies
`[-log(1 - p), -log(p)]` computed by numpy in float32 from the model's float32
sigmoid output `p`, WITHOUT clipping: where the sigmoid saturates (p == 0 or
p == 1 exactly in float32, |logit| above about 16.6 or 88) one energy is
infinite, which pydensecrf handles as a locked label (exp(-inf) = 0 in its
mean-field normalisation, so no pairwise message can move it). We do the same.
"""
from __future__ import annotations

import numpy as np

GAUSSIAN_SXY, GAUSSIAN_COMPAT = 3, 3
BILATERAL_SXY, BILATERAL_SRGB, BILATERAL_COMPAT = 20, 3, 10
INFERENCE_STEPS = 5


def sigmoid_probabilities(logits) -> np.ndarray:
    """float32 foreground probabilities of upsampled logits, as the original's
    `model.sigm` (TensorFlow's float32 sigmoid): exactly 1.0 from a logit of about
    16.64 up and exactly 0.0 below about -88, where a float64 sigmoid would still
    be finite and give a finite unary."""
    import tensorflow as tf

    return tf.math.sigmoid(tf.cast(logits, tf.float32)).numpy()


def unary_energies(prob: np.ndarray) -> np.ndarray:
    """float32 [2, S*S]: `-log(1 - p)` (background) then `-log(p)` (foreground).

    Computed in float32 as the original; infinite where p is exactly 0 or 1.
    """
    p = np.asarray(prob, np.float32)
    with np.errstate(divide="ignore"):
        unary = np.stack([-np.log(np.float32(1) - p), -np.log(p)])
    return np.ascontiguousarray(unary.reshape(2, -1), dtype=np.float32)


def crf_refine(image: np.ndarray, prob: np.ndarray, steps: int = INFERENCE_STEPS) -> np.ndarray:
    """bool [S, S]: DenseCRF labels on the padded network input.

    Args:
      image: uint8 [S, S, 3] RGB, the resized-and-padded image the network saw.
      prob: [S, S] foreground probability, the float32 sigmoid of the upsampled
        logits (other dtypes are cast to float32 first, as the original's map).
    As the original: `DenseCRF2D(S, S, 2)`, unary `[-log(1-p), -log(p)]`,
    Gaussian pairwise sxy=3 compat=3, bilateral sxy=20 srgb=3 compat=10 on the
    uint8 RGB image, 5 mean-field steps, label = argmax (ties go to background).
    """
    import pydensecrf.densecrf as dcrf

    image = np.asarray(image)
    prob = np.asarray(prob)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != prob.shape:
        raise ValueError(f"crf_refine needs an [S,S,3] uint8 image and an [S,S] probability "
                         f"map of the same size, got {image.shape} and {prob.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"crf_refine needs the uint8 RGB image (the bilateral kernel reads "
                         f"0-255 colours), got {image.dtype}")
    p = prob.astype(np.float32)
    if not np.all((p >= 0) & (p <= 1)):  # also catches NaN
        raise ValueError("crf_refine needs probabilities in [0, 1] (the sigmoid of the "
                         "logits), got values outside it or NaN")
    h, w = p.shape
    crf = dcrf.DenseCRF2D(w, h, 2)
    crf.setUnaryEnergy(unary_energies(p))
    crf.addPairwiseGaussian(sxy=GAUSSIAN_SXY, compat=GAUSSIAN_COMPAT)
    crf.addPairwiseBilateral(sxy=BILATERAL_SXY, srgb=BILATERAL_SRGB,
                             rgbim=np.ascontiguousarray(image), compat=BILATERAL_COMPAT)
    q = np.array(crf.inference(steps))
    return np.argmax(q, axis=0).reshape(h, w).astype(bool)


def refine_to_original(image: np.ndarray, prob: np.ndarray, h: int, w: int) -> np.ndarray:
    """bool [h, w]: `crf_refine` on the padded input, mapped back to the
    original image with the inverse resize-and-pad, as evaluation scores it.
    Numpy and pydensecrf only: runs in an evaluation's CRF worker processes."""
    from tf_rmi.data import image_ops

    return image_ops.inverse_resize_and_pad(crf_refine(image, prob), h, w)

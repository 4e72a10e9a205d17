"""DenseCRF post-processing with the original release's settings (pydensecrf)."""
from __future__ import annotations

import numpy as np

# Probabilities are clipped away from 0 and 1 so that -log stays finite: the
# original fed -log(sigmoid) unclipped, which is infinite only where float32
# sigmoid saturates (|logit| > ~17); elsewhere the two agree.
_PROB_EPSILON = 1e-8


def crf_refine(image: np.ndarray, prob: np.ndarray, steps: int = 5) -> np.ndarray:
    """bool [S, S]: DenseCRF labels on the padded network input.

    Args:
      image: uint8 [S, S, 3] RGB, the resized-and-padded image the network saw.
      prob: float [S, S], the foreground probability (sigmoid of the upsampled logits).
    As the original: `DenseCRF2D(S, S, 2)`, unary `[-log(1-p), -log(p)]`,
    Gaussian pairwise sxy=3 compat=3, bilateral sxy=20 srgb=3 compat=10 on the
    uint8 RGB image, 5 mean-field steps, label = argmax.
    """
    import pydensecrf.densecrf as dcrf

    image = np.ascontiguousarray(image, dtype=np.uint8)
    prob = np.asarray(prob, np.float64)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != prob.shape:
        raise ValueError(f"crf_refine needs an [S,S,3] uint8 image and an [S,S] map, got "
                         f"{image.shape} and {prob.shape}")
    h, w = prob.shape
    p = np.clip(prob, _PROB_EPSILON, 1 - _PROB_EPSILON)
    unary = np.stack([-np.log(1 - p), -np.log(p)]).reshape(2, -1).astype(np.float32)
    crf = dcrf.DenseCRF2D(w, h, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(unary))
    crf.addPairwiseGaussian(sxy=3, compat=3)
    crf.addPairwiseBilateral(sxy=20, srgb=3, rgbim=image, compat=10)
    q = np.array(crf.inference(steps))
    return np.argmax(q, axis=0).reshape(h, w).astype(bool)

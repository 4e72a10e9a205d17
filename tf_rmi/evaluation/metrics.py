"""Referring segmentation metrics as the original release computes them.

Per expression, `I = |pred & gt|`, `U = |pred | gt|` at original resolution.
Overall IoU = sum(I) / sum(U) over the split ("cumulative IoU" in the original);
precision@X = share of expressions with `I/U >= X`. Mean IoU (not in the
original; later work reports it) averages the per-expression IoU. An
expression with U = 0 (empty prediction and empty mask) has I/U = 0/0 in the
original, which is NaN and so never counts as correct; we give it IoU 0 for the
same effect on precision. It occurs: evaluation splits keep every sample, as
the original scores every one, so a sample with an empty mask counts as a
failure at every threshold and adds its predicted pixels to the overall union
(preprocessing flags such samples as degenerate; evaluation counts them).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence, Tuple

import numpy as np

IOU_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def intersection_and_union(pred: np.ndarray, gt: np.ndarray) -> Tuple[int, int]:
    """Pixel counts of `pred & gt` and `pred | gt` (bool arrays of one shape)."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f"Prediction {pred.shape} and mask {gt.shape} differ in shape")
    return int(np.logical_and(pred, gt).sum()), int(np.logical_or(pred, gt).sum())


def iou(intersection: int, union: int) -> float:
    """I/U, or 0 when U = 0 (the original's NaN never passes a threshold)."""
    return float(intersection) / union if union > 0 else 0.0


def overall_iou(intersections: Sequence[int], unions: Sequence[int]) -> float:
    total = float(np.sum(unions))
    return float(np.sum(intersections)) / total if total > 0 else 0.0


def mean_iou(ious: Sequence[float]) -> float:
    return float(np.mean(ious)) if len(ious) else 0.0


def precision_at(ious: Sequence[float], thresholds=IOU_THRESHOLDS) -> Dict[str, float]:
    """{"0.5": share of ious >= 0.5, ...}: the original counts `I/U >= X`
    (float64 true division), so an IoU exactly at X counts as correct."""
    ious = np.asarray(ious, np.float64)
    n = max(len(ious), 1)
    return {f"{t:g}": float(np.sum(ious >= t)) / n for t in thresholds}


def length_group_bounds(lengths: Sequence[int], num_groups: int = 4) -> List[Tuple[int, int]]:
    """Inclusive length ranges splitting `lengths` into groups of roughly equal size.

    The paper's Tables 2-5 split each test set into four groups by expression
    length (e.g. ReferIt 1 / 2 / 3-4 / 5-20). Expressions of one length stay
    together, so the k-th boundary is the length whose cumulative share is
    closest to k/num_groups (ties: the shorter), leaving at least one distinct
    length for every later group. Fewer distinct lengths than groups give one
    group per length. Ranges are contiguous: each starts one after the
    previous end, the first at the shortest length, the last ends at the longest.
    """
    lengths = np.asarray(lengths, int)
    if lengths.size == 0:
        return []
    values = np.unique(lengths)
    cum = np.searchsorted(np.sort(lengths), values, side="right") / lengths.size
    groups = min(int(num_groups), len(values))
    ends, first = [], 0
    for k in range(1, groups):
        last = len(values) - (groups - k)  # later groups each keep one length
        idx = min(range(first, last), key=lambda i: (abs(cum[i] - k / groups), i))
        ends.append(idx)
        first = idx + 1
    ends.append(len(values) - 1)
    bounds, start = [], int(values[0])
    for idx in ends:
        bounds.append((start, int(values[idx])))
        start = int(values[idx]) + 1
    return bounds


@dataclasses.dataclass
class ScoreAccumulator:
    """Collects per-expression I, U and length; reports the paper's metrics."""

    intersections: List[int] = dataclasses.field(default_factory=list)
    unions: List[int] = dataclasses.field(default_factory=list)
    lengths: List[int] = dataclasses.field(default_factory=list)

    def add(self, pred: np.ndarray, gt: np.ndarray, length: int) -> float:
        i, u = intersection_and_union(pred, gt)
        self.intersections.append(i)
        self.unions.append(u)
        self.lengths.append(int(length))
        return iou(i, u)

    @property
    def ious(self) -> List[float]:
        return [iou(i, u) for i, u in zip(self.intersections, self.unions)]

    def summary(self, bounds=None, thresholds=IOU_THRESHOLDS, num_groups: int = 4) -> dict:
        """count, overall_iou, mean_iou, precision {"0.5": ...}, and
        length_groups [{lengths [lo, hi], count, overall_iou, mean_iou}]
        (over `bounds`, by default `length_group_bounds(lengths, num_groups)`)."""
        out = {"count": len(self.unions),
               "overall_iou": overall_iou(self.intersections, self.unions),
               "mean_iou": mean_iou(self.ious),
               "precision": precision_at(self.ious, thresholds)}
        if bounds is None:
            bounds = length_group_bounds(self.lengths, num_groups)
        groups = []
        lengths = np.asarray(self.lengths)
        ious = np.asarray(self.ious)
        for lo, hi in bounds:
            sel = (lengths >= lo) & (lengths <= hi)
            groups.append({
                "lengths": [int(lo), int(hi)], "count": int(sel.sum()),
                "overall_iou": overall_iou(np.asarray(self.intersections)[sel],
                                           np.asarray(self.unions)[sel]),
                "mean_iou": mean_iou(ious[sel])})
        out["length_groups"] = groups
        return out


def bootstrap_overall_iou_difference(intersections_a: Sequence[int], unions_a: Sequence[int],
                                     intersections_b: Sequence[int], unions_b: Sequence[int],
                                     num_resamples: int = 2000, confidence: float = 0.95,
                                     seed: int = 0) -> Dict[str, float]:
    """Paired bootstrap of overall IoU(a) - overall IoU(b) over expressions.

    a and b score the SAME expressions in the same order (two models on one
    split). Each resample draws expressions with replacement and recomputes
    both cumulative IoUs on it. Returns {"difference" (on all expressions),
    "low", "high" (the percentile interval at `confidence`), "num_resamples",
    "count"}.
    """
    arrays = [np.asarray(x, np.float64) for x in (intersections_a, unions_a,
                                                  intersections_b, unions_b)]
    n = len(arrays[0])
    if n == 0 or any(len(x) != n for x in arrays):
        raise ValueError(f"bootstrap needs equally long, non-empty per-expression counts, got "
                         f"lengths {[len(x) for x in arrays]}")
    i_a, u_a, i_b, u_b = arrays
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(num_resamples, n))
    # Each resample's cumulative IoUs; a resample with no union scores 0.
    def cumulative(i, u):
        num, den = i[picks].sum(axis=1), u[picks].sum(axis=1)
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    diffs = cumulative(i_a, u_a) - cumulative(i_b, u_b)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(diffs, [alpha, 1.0 - alpha])
    return {"difference": overall_iou(i_a, u_a) - overall_iou(i_b, u_b),
            "low": float(low), "high": float(high), "num_resamples": int(num_resamples),
            "count": int(n)}

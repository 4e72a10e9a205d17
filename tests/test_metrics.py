"""Metrics on hand-computed cases."""
import numpy as np
import pytest

from tf_rmi import metrics


def _mask(rows, cols, shape=(4, 4)):
    m = np.zeros(shape, bool)
    m[rows, cols] = True
    return m


def test_intersection_and_union_by_hand():
    pred = _mask(slice(0, 2), slice(0, 2))   # 4 pixels
    gt = _mask(slice(1, 3), slice(1, 3))     # 4 pixels, 1 shared
    assert metrics.intersection_and_union(pred, gt) == (1, 7)


def test_empty_prediction_scores_zero_and_empty_both_never_pass():
    gt = _mask(slice(0, 1), slice(0, 1))
    empty = np.zeros((4, 4), bool)
    assert metrics.intersection_and_union(empty, gt) == (0, 1)
    assert metrics.iou(0, 0) == 0.0  # the original's 0/0 = NaN never counts as correct
    assert metrics.precision_at([metrics.iou(0, 0)])["0.5"] == 0.0


def test_overall_iou_is_cumulative_not_mean():
    assert metrics.overall_iou([1, 9], [2, 10]) == pytest.approx(10 / 12)
    assert metrics.mean_iou([0.5, 0.9]) == pytest.approx(0.7)


def test_precision_threshold_is_inclusive():
    p = metrics.precision_at([0.5, 0.59999, 0.7, 0.95])
    assert p == {"0.5": 1.0, "0.6": 0.5, "0.7": 0.5, "0.8": 0.25, "0.9": 0.25}


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.intersection_and_union(np.zeros((2, 2)), np.zeros((3, 2)))


def test_length_groups_are_roughly_equal_and_cover_everything():
    lengths = [1] * 10 + [2] * 10 + [3] * 10 + [5] * 5 + [8] * 5 + [12] * 10
    bounds = metrics.length_group_bounds(lengths)
    assert bounds == [(1, 2), (3, 3), (4, 8), (9, 12)]
    counts = [sum(lo <= n <= hi for n in lengths) for lo, hi in bounds]
    assert sum(counts) == len(lengths) and max(counts) <= 20


def test_accumulator_reports_groups_with_given_bounds():
    acc = metrics.ScoreAccumulator()
    gt = _mask(slice(0, 2), slice(0, 2))
    acc.add(gt, gt, 1)                       # IoU 1
    acc.add(np.zeros_like(gt), gt, 7)        # IoU 0
    s = acc.summary([(1, 3), (4, 9)])
    assert s["overall_iou"] == pytest.approx(4 / 8)
    assert [g["overall_iou"] for g in s["length_groups"]] == [1.0, 0.0]
    assert s["precision"]["0.9"] == 0.5

"""Metrics on hand-computed cases."""
import numpy as np
import pytest

from tf_rmi.evaluation import metrics


def _mask(rows, cols, shape=(4, 4)):
    m = np.zeros(shape, bool)
    m[rows, cols] = True
    return m


def test_intersection_and_union_by_hand():
    pred = _mask(slice(0, 2), slice(0, 2))   # 4 pixels
    gt = _mask(slice(1, 3), slice(1, 3))     # 4 pixels, 1 shared
    assert metrics.intersection_and_union(pred, gt) == (1, 7)


def test_empty_prediction_scores_zero():
    gt = _mask(slice(0, 1), slice(0, 1))
    empty = np.zeros((4, 4), bool)
    assert metrics.intersection_and_union(empty, gt) == (0, 1)
    assert metrics.iou(0, 1) == 0.0


def test_empty_prediction_and_empty_mask_never_count_as_correct():
    # The original's 0/0 is NaN, and NaN >= X is False: we define IoU 0.
    empty = np.zeros((4, 4), bool)
    i, u = metrics.intersection_and_union(empty, empty)
    assert (i, u) == (0, 0) and metrics.iou(i, u) == 0.0
    assert metrics.precision_at([metrics.iou(i, u)])["0.5"] == 0.0


def test_overall_iou_is_cumulative_not_mean():
    assert metrics.overall_iou([1, 9], [2, 10]) == pytest.approx(10 / 12)
    assert metrics.mean_iou([0.5, 0.9]) == pytest.approx(0.7)


def test_overall_iou_of_nothing_is_zero():
    assert metrics.overall_iou([], []) == 0.0 and metrics.mean_iou([]) == 0.0


def test_precision_counts_an_iou_exactly_at_the_threshold():
    # I/U computed from counts, as the original: 1/2, 3/5, 7/10, 4/5, 9/10.
    ious = [metrics.iou(1, 2), metrics.iou(3, 5), metrics.iou(7, 10), metrics.iou(4, 5),
            metrics.iou(9, 10)]
    assert metrics.precision_at(ious) == {"0.5": 1.0, "0.6": 0.8, "0.7": 0.6, "0.8": 0.4,
                                          "0.9": 0.2}


def test_precision_just_below_the_threshold_does_not_count():
    p = metrics.precision_at([0.5, 0.59999, 0.7, 0.95])
    assert p == {"0.5": 1.0, "0.6": 0.5, "0.7": 0.5, "0.8": 0.25, "0.9": 0.25}


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.intersection_and_union(np.zeros((2, 2)), np.zeros((3, 2)))


def test_length_groups_by_hand():
    lengths = [1] * 10 + [2] * 10 + [3] * 10 + [5] * 5 + [8] * 5 + [12] * 10
    # Cumulative shares 0.2, 0.4, 0.6, 0.7, 0.8, 1.0: nearest to 1/4, 2/4 (tie,
    # shorter), 3/4 (tie, shorter).
    assert metrics.length_group_bounds(lengths) == [(1, 1), (2, 2), (3, 5), (6, 12)]


def test_length_groups_are_roughly_equal_on_a_skewed_distribution():
    rng = np.random.RandomState(0)
    lengths = np.minimum(rng.geometric(0.2, size=2000), 20)
    bounds = metrics.length_group_bounds(lengths)
    counts = [int(np.sum((lengths >= lo) & (lengths <= hi))) for lo, hi in bounds]
    assert len(bounds) == 4 and sum(counts) == len(lengths)
    assert bounds[0][0] == lengths.min() and bounds[-1][1] == lengths.max()
    assert all(a[1] + 1 == b[0] for a, b in zip(bounds, bounds[1:]))
    assert max(counts) < 2 * min(counts), counts


def test_length_groups_with_fewer_lengths_than_groups():
    assert metrics.length_group_bounds([3, 3, 7]) == [(3, 3), (4, 7)]
    assert metrics.length_group_bounds([]) == []


def test_accumulator_reports_groups_with_given_bounds():
    acc = metrics.ScoreAccumulator()
    gt = _mask(slice(0, 2), slice(0, 2))
    acc.add(gt, gt, 1)                       # IoU 1
    acc.add(np.zeros_like(gt), gt, 7)        # IoU 0
    s = acc.summary([(1, 3), (4, 9)])
    assert s["overall_iou"] == pytest.approx(4 / 8)
    assert [g["overall_iou"] for g in s["length_groups"]] == [1.0, 0.0]
    assert [g["count"] for g in s["length_groups"]] == [1, 1]
    assert s["precision"]["0.9"] == 0.5


def test_accumulator_group_overall_iou_is_cumulative_within_the_group():
    acc = metrics.ScoreAccumulator()
    big = np.ones((4, 4), bool)
    acc.add(big, big, 2)                               # I 16, U 16
    acc.add(_mask(0, 0), _mask(0, slice(0, 2)), 2)     # I 1, U 2
    group = acc.summary([(1, 5)])["length_groups"][0]
    assert group["overall_iou"] == pytest.approx(17 / 18)
    assert group["mean_iou"] == pytest.approx(0.75)

"""experiments/resolution_cap: the score of a perfect per-cell prediction."""
import pytest

from experiments import resolution_cap


def test_a_perfect_prediction_at_stride_1_scores_every_pixel():
    scores = resolution_cap.perfect_cell_scores(32, 1.0, images=2, stride=1)
    assert scores["overall_iou"] == pytest.approx(1.0)
    assert scores["precision@0.7"] == 1.0 and scores["objects"] >= 6


def test_a_coarser_map_caps_the_score_below_one():
    fine = resolution_cap.perfect_cell_scores(64, 1.3, images=3, stride=4)
    coarse = resolution_cap.perfect_cell_scores(64, 1.3, images=3, stride=8)
    assert 0.3 < coarse["overall_iou"] < fine["overall_iou"] < 1.0

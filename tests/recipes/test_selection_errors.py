"""experiments/selection_errors: which object a cell prediction picks."""
import numpy as np
import pytest

from experiments.selection_errors import categorize

CELLS = np.array([[0, 0, -1, 1, 1],
                  [0, 0, -1, 1, 1]])


@pytest.mark.parametrize("predicted_columns,category", [
    ((0, 1), "right object"),
    ((0, 3, 4), "right + another object"),
    ((3, 4), "wrong object"),
    ((0,), "right object"),  # half of the target's cells is enough
    ((2,), "partial"),
    ((), "nothing"),
])
def test_categories(predicted_columns, category):
    predicted = np.zeros(CELLS.shape, bool)
    predicted[:, list(predicted_columns)] = True
    assert categorize(CELLS, predicted, target=0) == category

"""Figures: files written with the expected panel counts."""
import os

import numpy as np
import pytest

from tests.conftest import tiny_model_config
from tf_rmi import visualize
from tf_rmi.data.text import Vocabulary
from tf_rmi.models.segmenter import build_model

VOCAB = Vocabulary(["<pad>", "<go>", "<eos>", "<unk>", "the", "red", "circle", "left"])


def _image(h=40, w=56):
    return (np.random.RandomState(0).rand(h, w, 3) * 255).astype(np.uint8)


@pytest.mark.parametrize("kind", ["RMI", "LSTM"])
def test_expression_figures(kind, tmp_path):
    model = build_model(tiny_model_config(model=kind, vocab_size=len(VOCAB)))
    paths = visualize.expression_figures(model, VOCAB, _image(), "the red circle, left",
                                         str(tmp_path), stem="x")
    assert os.path.getsize(paths["fig5"]) > 0
    assert ("fig6" in paths) == (kind == "RMI")


def test_panel_counts(tmp_path):
    image = _image()
    maps = np.random.rand(3, 64, 64)
    mask = np.zeros(image.shape[:2], bool)
    mask[5:20, 5:20] = True
    assert visualize.plot_word_response_maps(image, ["the", "red", "circle"], maps, mask,
                                             str(tmp_path / "f6.png")) == 4
    assert visualize.plot_segmentation_per_word(image, ["the", "red"], [mask, mask],
                                                str(tmp_path / "f5.png")) == 2
    sample = {"image": image, "mask": mask, "prediction": mask, "sentence": "the red", "iou": 1.0}
    assert visualize.plot_results_grid([sample, dict(sample, crf_prediction=mask, crf_iou=1.0)],
                                       str(tmp_path / "f7.png")) == 7
    assert os.path.exists(tmp_path / "f7.png") and not os.path.exists(tmp_path / "f7.png.tmp.png")


def test_unpad_map_returns_the_original_size():
    out = visualize.unpad_map(np.random.rand(64, 64), 40, 56)
    assert out.shape == (40, 56)

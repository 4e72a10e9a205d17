"""Figures: files written atomically with the expected panel counts."""
import os

import numpy as np
import pytest
from PIL import Image

from tests.conftest import decisive_tiny_model, tiny_model_config
from tests.records import write_run
from tf_rmi.serving import inference, predict
from tf_rmi.viz import visualize
from tf_rmi.data import image_ops
from tf_rmi.data.text import Vocabulary, write_vocabulary

WORDS = ["<pad>", "<go>", "<eos>", "<unk>", "the", "red", "circle", "left"]
VOCAB = Vocabulary(WORDS)
SENTENCE = "the red circle, left"  # tokens: the | red | circle | ", " | left


def _image(h=40, w=56):
    return (np.random.RandomState(0).rand(h, w, 3) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def rmi_model():
    return decisive_tiny_model(tiny_model_config(vocab_size=len(WORDS)))


def test_word_outputs_have_one_entry_per_word(rmi_model):
    out = visualize.word_outputs(rmi_model, VOCAB, _image(), SENTENCE)
    assert out["tokens"] == ["the", "red", "circle", ", ", "left"]
    assert len(out["word_masks"]) == 5 and out["word_masks"][0].shape == (40, 56)
    assert out["word_response_maps"].shape == (5, 64, 64)
    # The last word's segmentation is the final one.
    np.testing.assert_array_equal(out["word_masks"][-1], out["final_mask"])


def test_fig6_has_a_panel_per_word_and_one_for_the_mask(rmi_model, tmp_path):
    path = str(tmp_path / "fig6.png")
    assert visualize.word_response_figure(rmi_model, VOCAB, _image(), SENTENCE, path) == 6
    assert Image.open(path).format == "PNG"


def test_fig6_is_refused_for_the_lstm_baseline(tmp_path):
    model = decisive_tiny_model(tiny_model_config(model="LSTM", vocab_size=len(WORDS)))
    with pytest.raises(ValueError, match="only for RMI models"):
        visualize.word_response_figure(model, VOCAB, _image(), SENTENCE,
                                       str(tmp_path / "f.png"))
    assert not os.path.exists(tmp_path / "f.png")


def test_fig5_has_a_panel_per_word(rmi_model, tmp_path):
    out = visualize.word_outputs(rmi_model, VOCAB, _image(), SENTENCE)
    assert visualize.plot_segmentation_per_word(out["image"], out["tokens"], out["word_masks"],
                                                str(tmp_path / "fig5.png")) == 5


@pytest.mark.parametrize("kind", ["RMI", "LSTM"])
def test_expression_figures_write_fig5_and_fig6_for_rmi_only(kind, tmp_path):
    model = decisive_tiny_model(tiny_model_config(model=kind, vocab_size=len(WORDS)))
    paths = visualize.expression_figures(model, VOCAB, _image(), SENTENCE, str(tmp_path), "x")
    assert sorted(paths) == (["fig5", "fig6"] if kind == "RMI" else ["fig5"])
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in paths.values())


def test_fig7_grid_panel_counts(tmp_path):
    image = _image()
    mask = np.zeros(image.shape[:2], bool)
    mask[5:20, 5:20] = True
    sample = {"image": image, "mask": mask, "prediction": mask, "sentence": "the red", "iou": 1.0}
    assert visualize.plot_results_grid([sample, sample], str(tmp_path / "a.png")) == 6
    # A CRF column for the sample that has one; the other row's cell stays empty.
    assert visualize.plot_results_grid([sample, dict(sample, crf_prediction=mask, crf_iou=1.0)],
                                       str(tmp_path / "b.png")) == 7


def test_write_eval_figures_writes_the_grid_atomically(tmp_path):
    image = _image()
    mask = np.ones(image.shape[:2], bool)
    sample = {"image": image, "mask": mask, "prediction": mask, "sentence": "x", "iou": 1.0}
    path = visualize.write_eval_figures([sample], str(tmp_path / "eval"))
    assert os.listdir(tmp_path / "eval") == ["fig7_results.png"]
    assert os.path.basename(path) == "fig7_results.png"


def test_word_response_maps_checks_the_map_count(tmp_path):
    with pytest.raises(ValueError, match="2 response maps for 3 words"):
        visualize.plot_word_response_maps(_image(), ["a", "b", "c"], np.zeros((2, 64, 64)),
                                          np.zeros((40, 56), bool), str(tmp_path / "f.png"))


def test_unpad_map_uses_the_inverse_geometry_of_the_masks():
    pred = np.random.RandomState(1).rand(64, 64) > 0.6
    values = inference.unpad_map(pred.astype(np.float64), 40, 56)
    assert values.shape == (40, 56)
    np.testing.assert_array_equal(values != 0, image_ops.inverse_resize_and_pad(pred, 40, 56))


def test_prefix_titles_join_words_and_keep_separators():
    assert visualize.prefix_titles(["the", "man", ", ", "left"]) == [
        "the", "the man", "the man, ", "the man, left"]


def test_figures_to_files_with_ground_truth_writes_three_kinds(tmp_path, rmi_model):
    run_dir = tmp_path / "run"
    write_run(run_dir, rmi_model, words=WORDS, vocab_path=str(tmp_path / "vocab.txt"))
    Image.fromarray(_image()).save(tmp_path / "pic.png")
    gt = np.zeros((40, 56), np.uint8)
    gt[10:30, 10:40] = 255
    Image.fromarray(gt).save(tmp_path / "gt.png")
    paths = predict.figures_to_files(str(tmp_path / "pic.png"), SENTENCE, str(tmp_path / "out"),
                                     str(run_dir), ground_truth=str(tmp_path / "gt.png"))
    assert sorted(os.path.basename(p) for p in paths) == [
        "pic_png_fig5_per_word.png", "pic_png_fig6_response_maps.png", "pic_png_fig7_result.png"]
    assert sorted(os.listdir(tmp_path / "out")) == sorted(os.path.basename(p) for p in paths)


# ------------------------------------------------ masks that can be seen


@pytest.mark.parametrize("object_color", [(220, 20, 20), (30, 200, 40), (20, 40, 230),
                                          (240, 240, 30)])
def test_overlay_draws_the_mask_in_a_colour_unlike_the_object(object_color):
    image = np.full((60, 80, 3), 128, np.uint8)
    mask = np.zeros((60, 80), bool)
    mask[10:45, 15:65] = True
    image[mask] = object_color
    drawn = visualize.overlay(image, mask).astype(float)
    plain = image.astype(float)
    edge = mask & ~np.roll(mask, 1, axis=0)  # the top row of the object
    assert np.linalg.norm(drawn[edge] - object_color, axis=1).min() > 150
    inside = np.zeros_like(mask)
    inside[20:35, 25:55] = True
    assert np.linalg.norm(drawn[inside] - plain[inside], axis=1).min() > 60
    np.testing.assert_array_equal(drawn[~mask], plain[~mask])


def test_the_old_red_tint_would_hide_a_red_mask():
    # What the issue saw: a 50 % red tint over a red object moves it by ~20 levels.
    image = np.full((20, 20, 3), (220, 20, 20), np.uint8)
    mask = np.ones((20, 20), bool)
    tinted = visualize.overlay(image, mask, color=(255, 40, 40), alpha=0.5, contour=False)
    assert np.abs(tinted.astype(int) - image).max() < 25
    assert np.abs(visualize.overlay(image, mask).astype(int) - image).max() > 100


def test_contour_width_follows_the_image_size():
    assert visualize.contour_width(40, 56) == 1
    assert visualize.contour_width(6000, 6000) == 30
    mask = np.zeros((30, 30), bool)
    mask[5:25, 5:25] = True
    edge = visualize.mask_boundary(mask, 2)
    assert edge[5, 10] and edge[6, 10] and not edge[7, 10] and not edge[4, 10]


def test_captioned_keeps_the_picture_pixel_for_pixel_below_the_caption():
    picture = _image(30, 200)
    out = visualize.captioned(picture, "the man on the left " * 5)
    assert out.shape[1] == 200 and out.shape[0] > 30
    np.testing.assert_array_equal(out[-30:], picture)
    band = out[:-30]
    assert band.min() < 100 and band.max() == 255  # text drawn on white


def test_fig6_heat_maps_share_one_scale_with_a_colour_bar(rmi_model):
    out = visualize.word_outputs(rmi_model, VOCAB, _image(), SENTENCE)
    fig = visualize.word_response_maps_figure(out["image"], out["tokens"],
                                              out["word_response_maps"], out["final_mask"])
    try:
        bars = [ax for ax in fig.axes if ax.get_ylabel() == "response (channel mean)"]
        assert len(bars) == 1
        heat = [ax.images[1] for ax in fig.axes if len(ax.images) == 2]
        assert len(heat) == 5 and len({im.get_clim() for im in heat}) == 1
        lo, hi = heat[0].get_clim()
        maps = [inference.unpad_map(m, 40, 56) for m in out["word_response_maps"]]
        assert lo == pytest.approx(min(m.min() for m in maps))
        assert hi == pytest.approx(max(m.max() for m in maps))
    finally:
        visualize.pyplot().close(fig)


@pytest.mark.parametrize("kind", ["RMI", "LSTM"])
def test_saved_model_word_outputs_equal_the_run_path(kind, tmp_path):
    from tf_rmi.serving import export_lib
    from tf_rmi.serving.predict import SavedModelPredictor

    model = decisive_tiny_model(tiny_model_config(model=kind, vocab_size=len(WORDS)))
    vocab_path = str(tmp_path / "vocab.txt")
    write_vocabulary(WORDS, vocab_path)
    export = export_lib.export_saved_model(model, vocab_path, str(tmp_path / "export"))
    image = _image()
    expected = visualize.word_outputs(model, VOCAB, image, SENTENCE)
    got = visualize.saved_model_word_outputs(SavedModelPredictor(export), image,
                                             SavedModelPredictor.encode_png(image), SENTENCE)
    assert got["tokens"] == expected["tokens"]
    np.testing.assert_array_equal(got["final_mask"], expected["final_mask"])
    assert len(got["word_masks"]) == 5
    assert any(0 < m.mean() < 1 for m in got["word_masks"])
    for a, b in zip(got["word_masks"], expected["word_masks"]):
        np.testing.assert_array_equal(a, b)
    if kind == "RMI":
        for a, b in zip(got["word_response_maps"], expected["word_response_maps"]):
            np.testing.assert_allclose(a, inference.unpad_map(b, 40, 56), atol=1e-4)
    else:
        assert "word_response_maps" not in got


def test_figures_to_files_writes_nothing_when_the_ground_truth_does_not_fit(tmp_path, rmi_model):
    Image.fromarray(_image()).save(tmp_path / "pic.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "gt.png")
    with pytest.raises(ValueError, match="Ground truth .* is 10x10 but the image is 40x56"):
        predict.figures_to_files(str(tmp_path / "pic.png"), SENTENCE, str(tmp_path / "out"),
                                 str(tmp_path / "no_run"), ground_truth=str(tmp_path / "gt.png"))
    assert not os.path.exists(tmp_path / "out")

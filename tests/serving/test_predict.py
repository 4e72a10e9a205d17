"""predict: the library path, the SavedModel path and the `tf_rmi predict` command."""
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.conftest import REPO_ROOT, TINY_WORDS, copy_run_with_a_missing_config_vocabulary
from tf_rmi.serving import predict
from tf_rmi.data.text import EmptySentenceError

WORDS = TINY_WORDS


@pytest.fixture
def run_dir(tiny_run_dir):
    """A decisive tiny RMI run over WORDS (tests/conftest.py, shared with test_cli)."""
    return tiny_run_dir


@pytest.fixture
def saved_model(tiny_run_export):
    return tiny_run_export


@pytest.fixture(scope="module")
def image_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("img") / "street.png")
    Image.fromarray((np.random.RandomState(2).rand(45, 61, 3) * 255).astype(np.uint8)).save(path)
    return path


def test_predict_mask_from_a_run_and_from_a_saved_model_agree(run_dir, saved_model, image_path):
    image = predict.load_image(image_path)
    from_run = predict.predict_mask(run_dir, image, "the big red circle")
    from_saved = predict.predict_mask(saved_model, image, "the big red circle")
    assert from_run[0].shape == from_saved[0].shape == (45, 61)
    assert from_run[0].dtype == bool and 0 < from_run[0].mean() < 1
    np.testing.assert_array_equal(from_saved[0], from_run[0])
    np.testing.assert_allclose(from_saved[1], from_run[1], atol=1e-5)


def test_predict_mask_probabilities_line_up_with_the_mask(run_dir, image_path):
    mask, prob = predict.predict_mask(predict.RunPredictor(run_dir),
                                      predict.load_image(image_path), "red circle")
    assert prob.shape == mask.shape
    # The mask is the non-zero set of a resized 0/1 map, so it holds every
    # pixel whose resized probability is above one half.
    assert np.all(mask[prob > 0.5])


def test_predict_to_files_writes_a_binary_mask_and_an_overlay(run_dir, image_path, tmp_path):
    mask_path, overlay_path = predict.predict_to_files(image_path, "the red circle",
                                                       str(tmp_path / "out"), checkpoint=run_dir)
    assert os.path.basename(mask_path) == "street_png_mask.png"
    assert os.path.basename(overlay_path) == "street_png_overlay.png"
    mask = np.asarray(Image.open(mask_path))
    assert mask.shape == (45, 61) and set(np.unique(mask)) == {0, 255}
    assert Image.open(overlay_path).format == "PNG"
    assert sorted(os.listdir(tmp_path / "out")) == ["street_png_mask.png", "street_png_overlay.png"]


@pytest.mark.parametrize("expression", ["", "   ", "\u3000"])
def test_blank_expression_is_refused_before_anything_is_written(run_dir, image_path, tmp_path,
                                                                expression):
    with pytest.raises(ValueError, match="empty"):
        predict.predict_to_files(image_path, expression, str(tmp_path / "out"),
                                 checkpoint=run_dir)
    assert not os.path.exists(tmp_path / "out")


def test_run_predictor_refuses_a_blank_expression(run_dir, image_path):
    with pytest.raises(EmptySentenceError):
        predict.RunPredictor(run_dir)(predict.load_image(image_path), " ")


def test_unreadable_image_is_a_clear_error(run_dir, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match="Cannot read image .*broken.png"):
        predict.predict_to_files(str(bad), "red", str(tmp_path / "out"), checkpoint=run_dir)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        predict.predict_to_files(str(tmp_path / "missing.png"), "red", str(tmp_path / "out"),
                                 checkpoint=run_dir)
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("checkpoint,saved_model", [(None, None), ("a", "b")])
def test_exactly_one_model_source_is_required(image_path, tmp_path, checkpoint, saved_model):
    with pytest.raises(ValueError, match="exactly one of --checkpoint"):
        predict.predict_to_files(image_path, "red", str(tmp_path), checkpoint, saved_model)


def test_missing_saved_model_names_the_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="No SavedModel in .*nowhere"):
        predict.SavedModelPredictor(str(tmp_path / "nowhere"))


def test_load_image_tiles_grayscale_and_drops_alpha(tmp_path):
    gray = (np.arange(12, dtype=np.uint8) * 20).reshape(3, 4)
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgba = np.dstack([gray, gray, gray, np.full_like(gray, 7)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(predict.load_image(str(tmp_path / "g.png")),
                                  np.dstack([gray] * 3))
    np.testing.assert_array_equal(predict.load_image(str(tmp_path / "a.png")),
                                  np.dstack([gray] * 3))


def _cli(worker, *args):
    """`tf_rmi <args>` (tf_rmi.cli) in the session's worker process (tests/conftest.py);
    tests/cli/test_cli.py also starts it as a process of its own."""
    result = worker.run(*args, cwd=REPO_ROOT, timeout=600)
    return subprocess.CompletedProcess(result.args, result.returncode,
                                       result.stdout.decode("utf-8", "replace"),
                                       result.stderr.decode("utf-8", "replace"))


def test_predict_command(run_dir, image_path, tmp_path, cli_worker):
    out_dir = str(tmp_path / "pred")
    result = _cli(cli_worker, "predict", f"--checkpoint={run_dir}", f"--image={image_path}",
                  "--expression=the red circle", f"--output_dir={out_dir}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert os.path.join(out_dir, "street_png_mask.png") in result.stdout
    assert np.asarray(Image.open(os.path.join(out_dir, "street_png_mask.png"))).shape == (45, 61)


def test_predict_command_bad_input_exits_with_a_message(run_dir, tmp_path, cli_worker):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff broken")
    result = _cli(cli_worker, "predict", f"--checkpoint={run_dir}", f"--image={bad}", "--expression=red",
                  f"--output_dir={tmp_path / 'pred'}")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "tf_rmi predict: Cannot read image" in result.stderr
    assert not os.path.exists(tmp_path / "pred")


def test_saved_model_errors_become_value_errors_with_the_graph_message(saved_model):
    predictor = predict.SavedModelPredictor(saved_model)
    with pytest.raises(ValueError, match=r"^image_bytes is not a JPEG, PNG, GIF or BMP image"):
        predictor.predict_bytes(b"GIF9 nope", "red")
    with pytest.raises(ValueError, match=r"^Invalid PNG"):
        predictor.predict_bytes(b"\x89PNG\r\n\x1a\n broken", "red")
    with pytest.raises(ValueError, match=r"^expression is empty or whitespace only"):
        predictor(np.zeros((5, 5, 3), np.uint8), "\u2003")


def test_load_image_reads_16_bit_png_as_the_saved_model_decoder(tmp_path):
    pixels = (np.random.RandomState(4).rand(6, 7) * 65535).astype(np.uint16)
    Image.fromarray(pixels).save(tmp_path / "deep.png")
    expected = tf.io.decode_image((tmp_path / "deep.png").read_bytes(), channels=3).numpy()
    np.testing.assert_array_equal(predict.load_image(str(tmp_path / "deep.png")), expected)


# ------------------------------------------- expressions and output files


def test_check_expression_names_undecodable_text():
    assert predict.check_expression(b"the red circle") == "the red circle"
    assert predict.check_expression("caf\u00e9") == "caf\u00e9"
    # A non-UTF-8 command-line argument arrives as surrogate escapes.
    argv_form = b"the \xff circle".decode("utf-8", "surrogateescape")
    for bad in (b"the \xff circle", argv_form):
        with pytest.raises(ValueError, match=r"The expression b'the \\xff circle' is not valid "
                                             r"UTF-8 text \(invalid start byte at byte 4\)"):
            predict.check_expression(bad)
    for blank in ("", " \t", b" "):
        with pytest.raises(ValueError, match="empty"):
            predict.check_expression(blank)


def test_expression_report_keeps_the_original_semantics_and_says_so():
    from tf_rmi.data.text import Vocabulary

    vocab = Vocabulary(WORDS)
    words = "the big red circle left of zzz big red circle qqq"
    report = predict.expression_report(words, 6, vocab)
    assert report.read == ["the", "big", "red", "circle", "left", "of"]
    assert report.dropped == ["zzz", "big", "red", "circle", "qqq"]
    assert report.unknown == [] and report.num_unknown == 0
    warnings = report.warnings()
    assert len(warnings) == 1 and "has 11 tokens but the model reads the first 6" in warnings[0]
    assert report.caption().startswith("the big red circle left of [+5 more words not read")
    unknown = predict.expression_report("the zzz circle", 6, vocab)
    assert unknown.warnings() == ["1 of the 3 words read is not in the model's vocabulary "
                                  "and read as <unk>: 'zzz'"]
    assert "only punctuation" in predict.expression_report("?!", 6, vocab).warnings()[0]
    assert "none of the 2 words" in predict.expression_report("zzz qqq", 6, vocab).warnings()[0]
    assert predict.expression_report("the red circle", 6, vocab).warnings() == []


def test_output_stem_keeps_the_extension():
    assert predict.output_stem("photos/scene.jpg") == "scene_jpg"
    assert predict.output_stem("scene.png") == "scene_png"
    assert predict.output_stem("scene") == "scene"
    assert predict.output_stem("a.b.tiff") == "a.b_tiff"


def test_write_files_leaves_nothing_when_a_later_picture_fails(tmp_path):
    good = np.zeros((4, 4), np.uint8)
    bad = np.zeros((2, 2, 2, 2), np.uint8)  # not an image
    with pytest.raises(TypeError):
        predict.write_files([(str(tmp_path / "a.png"), good), (str(tmp_path / "b.png"), bad)])
    assert os.listdir(tmp_path) == []


def test_predict_to_files_warns_and_titles_what_was_read(run_dir, image_path, tmp_path):
    warnings = []
    predict.predict_to_files(image_path, "the zzz circle", str(tmp_path), checkpoint=run_dir,
                             warn=warnings.append)
    assert warnings == ["1 of the 3 words read is not in the model's vocabulary and read as "
                        "<unk>: 'zzz'"]


def test_saved_model_predictor_names_a_non_utf8_expression(saved_model):
    predictor = predict.SavedModelPredictor(saved_model)
    argv_form = b"the \xff circle".decode("utf-8", "surrogateescape")
    with pytest.raises(ValueError, match="^expression is not valid UTF-8 text"):
        predictor(np.zeros((5, 5, 3), np.uint8), argv_form)


def test_run_predictor_prefers_the_run_directory_vocabulary(run_dir, tmp_path):
    # The fixture's config names the vocabulary by absolute path; a copy of the
    # run whose config names a path that no longer exists still works.
    copy = copy_run_with_a_missing_config_vocabulary(run_dir, tmp_path / "copy")
    assert predict.RunPredictor(copy).vocab.tokens == WORDS


def test_an_empty_mask_is_warned_about_and_captioned(run_dir, image_path, tmp_path, monkeypatch):
    empty = lambda self, image, expression: (np.zeros(image.shape[:2], bool),  # noqa: E731
                                             np.zeros(image.shape[:2], np.float32))
    monkeypatch.setattr(predict.RunPredictor, "__call__", empty)
    warnings = []
    _, overlay_path = predict.predict_to_files(image_path, "the red circle", str(tmp_path),
                                               checkpoint=run_dir, warn=warnings.append)
    assert warnings == ["the predicted mask is empty: the model found no pixel for this "
                        "expression"]
    picture = np.asarray(Image.open(overlay_path).convert("RGB"))
    np.testing.assert_array_equal(picture[-45:], predict.load_image(image_path))

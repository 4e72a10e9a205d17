"""The command line as a user meets it: self-contained run directories, help,
pictures that show the mask, warnings, bad input. Every test runs the real
entry points outside the test process: in a subprocess of its own, or (to pay
TensorFlow's import once, not once per command) as one of the commands a
long-lived subprocess (`EntryPointWorker`, tests/conftest.py) runs in turn, each from its own
working directory with its own output streams and exit status."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from tests.conftest import REPO_ROOT, TINY_WORDS, EntryPointWorker
from tests.records import T, write_quadrant_records

WORDS = TINY_WORDS
TINY_TRAIN_FLAGS = ["--trunk=small", "--small_trunk_width=8", "--input_size=64", f"--num_words={T}",
                    "--visual_dim=16", "--embed_dim=12", "--lstm_units=10", "--mlstm_units=8",
                    "--iterations=2", "--batch_size=2", "--snapshot_every=2", "--progress=false"]


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    # The checkout's tf_rmi, whatever the working directory.
    env["PYTHONPATH"] = os.pathsep.join([REPO_ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def _run(module, *args, cwd=REPO_ROOT, timeout=600):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          cwd=str(cwd), env=_env(), timeout=timeout)


@pytest.fixture
def cli(cli_worker):
    """Runs `tf_rmi <command> ...` (tf_rmi.cli) in the session's long-lived subprocess."""
    return cli_worker


def _text(stream: bytes) -> str:
    return stream.decode("utf-8", "replace")


def _ok(result):
    assert result.returncode == 0, _text(result.stderr)[-3000:]
    assert "Traceback" not in _text(result.stderr)
    return _text(result.stdout)


def _fails_cleanly(result, message):
    err = _text(result.stderr)
    assert result.returncode != 0, _text(result.stdout)[-2000:]
    assert "Traceback" not in err, err[-3000:]
    assert message in err, err[-3000:]
    return err


# ------------------------------------------------------------ fixtures


@pytest.fixture
def tiny_run(tiny_run_dir):
    """A run directory (decisive tiny RMI model) whose config names its vocabulary by
    path (tests/conftest.py, shared with test_predict)."""
    return tiny_run_dir


@pytest.fixture
def tiny_export(tiny_run_export):
    return tiny_run_export


@pytest.fixture(scope="module")
def red_image(tmp_path_factory):
    """A large red object (noisy reds) on a grey border: most mask pixels are red.
    Wider than a default matplotlib figure (480 px at 80 dpi)."""
    rng = np.random.RandomState(7)
    h, w = 400, 900
    image = np.full((h, w, 3), 128, np.uint8)
    image[10:-10, 10:-10, 0] = rng.randint(170, 256, (h - 20, w - 20))
    image[10:-10, 10:-10, 1:] = rng.randint(0, 40, (h - 20, w - 20, 2))
    path = tmp_path_factory.mktemp("cli_img") / "scene.png"
    Image.fromarray(image).save(path)
    return str(path), image


# ------------------------------------------------- 1. self-contained run


@pytest.fixture(scope="module")
def trained_elsewhere(tmp_path_factory):
    """A run trained by `tf_rmi.train` with a relative --tfrecord_dir (as `make
    train` does), then copied to another place; the training directory keeps
    the records."""
    work = tmp_path_factory.mktemp("train_cwd")
    write_quadrant_records(str(work / "records"))
    _ok(_run("tf_rmi.train", "--dataset=shapes", "--tfrecord_dir=records", "--run_dir=runs/tiny",
             *TINY_TRAIN_FLAGS, cwd=work))
    assert json.load(open(work / "runs" / "tiny" / "config.json"))["data"]["tfrecord_dir"] == \
        "records"
    copy = tmp_path_factory.mktemp("copied") / "tiny_copy"
    shutil.copytree(work / "runs" / "tiny", copy)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    image = elsewhere / "photo.png"
    Image.fromarray((np.random.RandomState(1).rand(50, 70, 3) * 255).astype(np.uint8)).save(image)
    return work, copy, elsewhere, image


def test_training_copies_the_vocabulary_into_the_run(trained_elsewhere):
    work, copy, _, _ = trained_elsewhere
    assert (copy / "vocab.txt").read_bytes() == (work / "records" / "shapes" /
                                                 "vocab.txt").read_bytes()


def test_a_copied_run_predicts_and_exports_from_another_directory(trained_elsewhere):
    _, copy, elsewhere, image = trained_elsewhere
    out = _ok(_run("tf_rmi.cli", "predict", f"--checkpoint={copy}", f"--image={image}",
                   "--expression=w1 w2", "--output_dir=pred", cwd=elsewhere))
    assert "pred/photo_png_mask.png" in out
    assert np.asarray(Image.open(elsewhere / "pred" / "photo_png_mask.png")).shape == (50, 70)
    _ok(_run("tf_rmi.export", f"--checkpoint={copy}", "--output_dir=exported", cwd=elsewhere))
    assert os.path.isfile(elsewhere / "exported" / "saved_model.pb")


def test_checkpoint_dot_from_inside_the_copied_run(trained_elsewhere, cli):
    _, copy, elsewhere, image = trained_elsewhere
    _ok(cli.run("predict", "--checkpoint=.", f"--image={image}", "--expression=w3",
             f"--output_dir={elsewhere / 'dot'}", cwd=copy))
    assert os.path.isfile(elsewhere / "dot" / "photo_png_overlay.png")


def test_a_copied_run_evaluates_from_another_directory_raw_and_crf_apart(trained_elsewhere):
    work, copy, elsewhere, _ = trained_elsewhere
    evaluate = EntryPointWorker("tf_rmi.evaluate", env=_env())
    try:
        # Without --tfrecord_dir the run's relative records path means nothing here: say so.
        _fails_cleanly(evaluate.run(f"--checkpoint={copy}", "--split=train", cwd=elsewhere),
                       "pass --tfrecord_dir")
        records = str(work / "records")
        for extra in ([], ["--crf"]):
            _ok(evaluate.run(f"--checkpoint={copy}", "--split=train",
                             f"--tfrecord_dir={records}", *extra, cwd=elsewhere))
    finally:
        evaluate.close()
    results = elsewhere / "experiments" / "results" / "tiny_copy"
    assert sorted(os.listdir(results)) == ["train", "train_crf"]
    assert json.load(open(results / "train" / "results.json"))["crf"] is None
    assert json.load(open(results / "train_crf" / "results.json"))["crf"] is not None


def test_an_old_run_without_its_vocabulary_falls_back_to_the_manifest(trained_elsewhere,
                                                                      tmp_path, cli):
    work, copy, elsewhere, image = trained_elsewhere
    old = tmp_path / "old_run"
    shutil.copytree(copy, old)
    os.remove(old / "vocab.txt")
    err = _fails_cleanly(cli.run("predict", f"--checkpoint={old}", f"--image={image}",
                                 "--expression=w1", "--output_dir=p", cwd=elsewhere),
                         "--vocab_file")
    assert "make preprocess" not in err
    assert not os.path.exists(elsewhere / "p")
    # From the directory training ran in, the manifest is found as before ...
    _ok(cli.run("predict", f"--checkpoint={old}", f"--image={image}",
                "--expression=w1", f"--output_dir={tmp_path / 'a'}", cwd=work))
    # ... and from anywhere with --vocab_file.
    _ok(cli.run("predict", f"--checkpoint={old}", f"--image={image}",
                "--expression=w1", f"--vocab_file={copy / 'vocab.txt'}",
                f"--output_dir={tmp_path / 'b'}", cwd=elsewhere))


# ------------------------------------------------- 2. pictures show the mask


def test_overlay_shows_a_red_objects_mask_at_full_resolution(tiny_run, red_image, tmp_path,
                                                             cli):
    path, image = red_image
    _ok(cli.run("predict", f"--checkpoint={tiny_run}", f"--image={path}",
                "--expression=the red circle", f"--output_dir={tmp_path}"))
    mask = np.asarray(Image.open(tmp_path / "scene_png_mask.png")) > 0
    picture = np.asarray(Image.open(tmp_path / "scene_png_overlay.png").convert("RGB"))
    h, w = image.shape[:2]
    assert 0.05 < mask.mean() < 0.95, "the test needs a mask that is neither empty nor full"
    assert picture.shape[1] == w and picture.shape[0] > h  # caption band above, not rescaled
    drawn = picture[-h:].astype(float)
    plain = image.astype(float)
    np.testing.assert_array_equal(drawn[~mask], plain[~mask])  # outside: untouched
    # Mask pixels next to a non-mask pixel: the outline covers at least these.
    edge = mask & ~ndimage.binary_erosion(mask, border_value=0) & (plain[..., 0] > 160)
    assert edge.sum() > 20
    # The outline on red pixels is in a colour far from red ...
    assert np.linalg.norm(drawn[edge] - [255, 0, 0], axis=1).min() > 200
    # ... and inside, the tint moves every red pixel visibly.
    inside = mask & ~edge & (plain[..., 0] > 160)
    assert np.linalg.norm(drawn[inside] - plain[inside], axis=1).min() > 60


def test_figures_from_a_saved_model_through_explain(tiny_export, red_image, tmp_path, cli):
    path, image = red_image
    gt = np.zeros(image.shape[:2], np.uint8)
    gt[30:220, 40:500] = 255
    Image.fromarray(gt).save(tmp_path / "gt.png")
    out = _ok(cli.run("figures", f"--saved_model={tiny_export}", f"--image={path}",
                      "--expression=the red circle, left",
                      f"--ground_truth={tmp_path / 'gt.png'}", f"--output_dir={tmp_path / 'figs'}"))
    assert sorted(os.listdir(tmp_path / "figs")) == [
        "scene_png_fig5_per_word.png", "scene_png_fig6_response_maps.png",
        "scene_png_fig7_result.png"]
    assert all(os.path.join(str(tmp_path / "figs"), n) in out for n in os.listdir(tmp_path / "figs"))


# ------------------------------------------------------------- 3. help


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["help"]])
def test_tf_rmi_help_lists_the_commands(args):
    out = _ok(_run("tf_rmi.cli", *args))
    assert "predict" in out and "figures" in out and "--help" in out


@pytest.mark.parametrize("command,flag", [("predict", "--saved_model"),
                                          ("figures", "--ground_truth")])
def test_command_help_lists_its_flags(command, flag):
    for option in ("--help", "-h"):
        out = _ok(_run("tf_rmi.cli", command, option))
        assert f"usage: tf_rmi {command}" in out
        assert flag in out and "--expression" in out and "--image" in out


def test_no_command_prints_the_commands_and_fails():
    result = _run("tf_rmi.cli")
    assert result.returncode == 2 and "predict" in _text(result.stderr)
    _fails_cleanly(_run("tf_rmi.cli", "segment", "--image=x", "--expression=y"),
                   "unknown command 'segment'")


@pytest.mark.parametrize("module,first_line,flag", [
    ("tf_rmi.evaluate", "Evaluates a trained", "--tfrecord_dir"),
    ("tf_rmi.export", "Exports a run", "--output_dir"),
    ("tf_rmi.train", "Trains RMI", "--run_dir")])
def test_entry_point_help_lists_its_flags(module, first_line, flag):
    out = _ok(_run(module, "--help"))
    assert out.startswith(first_line)
    assert "flags:" in out and f"  {flag}\n" in out


def test_make_help_lists_the_targets():
    result = subprocess.run(["make", "-s", "help"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for target in ("make test", "make demo", "make train", "make eval", "make export"):
        assert target in result.stdout


def test_unknown_dataset_is_named_by_make_and_by_train(tmp_path):
    result = subprocess.run(["make", "-n", "train", "DATASET=nosuch"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Unknown dataset 'nosuch': use one of unc unc+ Gref" in result.stderr
    err = _fails_cleanly(_run("tf_rmi.train", "--dataset=nosuch", f"--run_dir={tmp_path / 'r'}",
                              "--iterations=5"), "Unknown dataset 'nosuch': use one of unc")
    assert "iteration budget" not in err


# ---------------------------------------------- 4, 5. bad input, warnings


@pytest.mark.parametrize("source", ["checkpoint", "saved_model"])
def test_non_utf8_expression_is_one_line_naming_it_and_writes_nothing(source, tiny_run,
                                                                     tiny_export, red_image,
                                                                     tmp_path):
    model = f"--checkpoint={tiny_run}" if source == "checkpoint" else f"--saved_model={tiny_export}"
    result = subprocess.run(
        [sys.executable, "-m", "tf_rmi.cli", "predict", model, f"--image={red_image[0]}",
         b"--expression=the \xff circle", f"--output_dir={tmp_path / 'out'}"],
        capture_output=True, cwd=REPO_ROOT, env=_env(), timeout=600)
    err = _fails_cleanly(result, "tf_rmi predict: The expression b'the \\xff circle' is not "
                                 "valid UTF-8")
    assert not os.path.exists(tmp_path / "out")
    assert "matplotlib" not in err


@pytest.mark.parametrize("expression,warning", [
    ("!!! ...", "only punctuation"),
    ("the zzz red qqq", "2 of the 4 words read are not in the model's vocabulary and read as "
                        "<unk>: 'zzz', 'qqq'"),
    ("the big red circle left of the big red circle", "has 10 tokens but the model reads the "
                                                      "first 6 (as the original release): 4 "
                                                      "dropped ('the big red circle')"),
])
def test_surprises_in_the_expression_are_warned_about(expression, warning, tiny_run, red_image,
                                                      tmp_path, cli):
    result = cli.run("predict", f"--checkpoint={tiny_run}", f"--image={red_image[0]}",
                     f"--expression={expression}", f"--output_dir={tmp_path}")
    _ok(result)
    assert "tf_rmi predict: warning: " in _text(result.stderr)
    assert warning in _text(result.stderr)
    assert os.path.isfile(tmp_path / "scene_png_mask.png")


def test_saved_model_predict_warns_from_its_outputs(tiny_export, red_image, tmp_path, cli):
    result = cli.run("predict", f"--saved_model={tiny_export}", f"--image={red_image[0]}",
                     "--expression=zzz big red circle left of the circle",
                     f"--output_dir={tmp_path}")
    _ok(result)
    err = _text(result.stderr)
    assert "1 of the 6 words read is not in the model's vocabulary and read as <unk>: 'zzz'" in err
    assert "2 dropped ('the circle')" in err


def test_plain_expression_gives_no_warning(tiny_run, red_image, tmp_path, cli):
    result = cli.run("predict", f"--checkpoint={tiny_run}", f"--image={red_image[0]}",
                     "--expression=the big red circle", f"--output_dir={tmp_path}")
    _ok(result)
    assert "warning" not in _text(result.stderr)


# ------------------------------------------------------------ 6. smaller


def test_same_stem_different_extensions_write_different_files(tiny_run, red_image, tmp_path,
                                                              cli):
    path, image = red_image
    Image.fromarray(image).save(tmp_path / "scene.jpg", quality=95)
    outputs = set()
    for source in (path, str(tmp_path / "scene.jpg")):
        out = _ok(cli.run("predict", f"--checkpoint={tiny_run}", f"--image={source}",
                          "--expression=red", f"--output_dir={tmp_path / 'out'}"))
        outputs.update(out.split())
    assert len(outputs) == 4
    assert sorted(os.listdir(tmp_path / "out")) == [
        "scene_jpg_mask.png", "scene_jpg_overlay.png", "scene_png_mask.png",
        "scene_png_overlay.png"]

"""SavedModel export: used from a process that never imports tf_rmi, same masks
as the library, clear errors on bad input; the predict command."""
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.conftest import REPO_ROOT, decisive_tiny_model, tiny_model_config
from tf_rmi import export_lib
from tf_rmi.config import DataConfig, RunConfig
from tf_rmi.data.text import write_vocabulary
from tf_rmi.predict import RunPredictor
from tf_rmi.run_dir import CHECKPOINT_PREFIX, checkpoint_dir

WORDS = ["<pad>", "<go>", "<eos>", "<unk>", "the", "red", "circle", "left", "of", "big"]
SENTENCES = ["the red circle", "Big circle, left of the red.", "zzz qqq"]

LOADER = r"""
import json, sys
import numpy as np
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
serve = m.signatures["serving_default"]
out = {}
for name in sys.argv[3:]:
    data = open(name, "rb").read()
    for s in json.loads(sys.argv[2]):
        r = serve(image_bytes=tf.constant(data), expression=tf.constant(s))
        out[name + "|" + s] = r["mask"].numpy().astype(int).tolist()
errors = {}
for label, data, s in [("bytes", b"not an image at all", "the red circle"),
                       ("empty", open(sys.argv[3], "rb").read(), "   ")]:
    try:
        serve(image_bytes=tf.constant(data), expression=tf.constant(s))
        errors[label] = "no error"
    except tf.errors.InvalidArgumentError as e:
        errors[label] = e.message
ok = serve(image_bytes=tf.constant(open(sys.argv[3], "rb").read()), expression=tf.constant("red"))
ex = m.signatures["explain"](image_bytes=tf.constant(open(sys.argv[3], "rb").read()),
                             expression=tf.constant("the red circle"))
print(json.dumps({"masks": out, "errors": errors, "usable_after_error": int(ok["mask"].shape[0]),
                  "explain_shape": list(ex["word_response_maps"].shape),
                  "tf_rmi_imported": "tf_rmi" in sys.modules}))
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    vocab_path = str(root / "vocab.txt")
    write_vocabulary(WORDS, vocab_path)
    cfg = tiny_model_config(vocab_size=len(WORDS))
    model = decisive_tiny_model(cfg)
    RunConfig(data=DataConfig(dataset="tiny", vocab_file=vocab_path), model=cfg).save(str(root))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), checkpoint_dir(str(root)), 1,
                               checkpoint_name=CHECKPOINT_PREFIX).save()
    return str(root)


def _images(root):
    rng = np.random.RandomState(0)
    paths = {}
    for name, shape, fmt in (("a.png", (50, 70, 3), "PNG"), ("b.jpg", (90, 40, 3), "JPEG"),
                             ("c.png", (33, 33), "PNG")):
        path = os.path.join(root, name)
        Image.fromarray((rng.rand(*shape) * 255).astype(np.uint8)).save(path, fmt)
        paths[name] = path
    return paths


def test_saved_model_from_a_fresh_process_matches_the_library(run_dir, tmp_path):
    export_dir = export_lib.export_run(run_dir, str(tmp_path / "export"))
    images = _images(str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", LOADER, export_dir, json.dumps(SENTENCES), *images.values()],
        capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["tf_rmi_imported"] is False
    predictor = RunPredictor(run_dir)
    for path in images.values():
        pixels = tf.io.decode_image(open(path, "rb").read(), channels=3).numpy()
        for sentence in SENTENCES:
            expected, _ = predictor(pixels, sentence)
            got = np.array(out["masks"][path + "|" + sentence], bool)
            assert got.shape == pixels.shape[:2]
            assert 0 < got.mean() < 1, "a mask of one value would make the comparison vacuous"
            np.testing.assert_array_equal(got, expected, err_msg=f"{path} {sentence}")
    assert "not a JPEG, PNG, GIF or BMP" in out["errors"]["bytes"]
    assert "empty or whitespace only" in out["errors"]["empty"]
    assert out["usable_after_error"] == 50
    assert out["explain_shape"] == [6, 50, 70]


def test_export_refuses_a_vocabulary_of_another_size(run_dir, tmp_path):
    other = str(tmp_path / "other.txt")
    write_vocabulary(WORDS + ["extra"], other)
    with pytest.raises(ValueError, match="has 11 words but the model embeds 10"):
        export_lib.export_run(run_dir, str(tmp_path / "x"), vocab_file=other)
    assert not os.path.exists(tmp_path / "x")


def test_predict_command_writes_mask_and_overlay(run_dir, tmp_path):
    images = _images(str(tmp_path))
    out_dir = str(tmp_path / "pred")
    result = subprocess.run(
        [sys.executable, "-m", "tf_rmi.cli", "predict", f"--checkpoint={run_dir}",
         f"--image={images['b.jpg']}", "--expression=the red circle", f"--output_dir={out_dir}"],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    mask = np.asarray(Image.open(os.path.join(out_dir, "b_mask.png")))
    assert mask.shape == (90, 40) and set(np.unique(mask)) <= {0, 255}
    assert os.path.getsize(os.path.join(out_dir, "b_overlay.png")) > 0
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG broken")
    result = subprocess.run(
        [sys.executable, "-m", "tf_rmi.cli", "predict", f"--checkpoint={run_dir}",
         f"--image={bad}", "--expression=red", f"--output_dir={out_dir}"],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "Cannot read image" in result.stderr

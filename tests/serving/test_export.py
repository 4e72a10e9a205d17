"""SavedModel export: used from a process that never imports tf_rmi, same masks
as the library path, clear errors on bad input, the model usable after them."""
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.conftest import (REPO_ROOT, copy_run_with_a_missing_config_vocabulary, decisive_tiny_model,
                            tiny_model_config)
from tests.records import write_run
from tf_rmi.serving import export_lib
from tf_rmi.data.text import write_vocabulary
from tf_rmi.serving.predict import RunPredictor, load_image

WORDS = ["<pad>", "<go>", "<eos>", "<unk>", "the", "red", "circle", "left", "of", "big"]
SENTENCES = ["the red circle", "Big circle, left of the red.", "zzz qqq"]

# Runs in a fresh interpreter: only TensorFlow, numpy and the standard library.
LOADER = r"""
import json, sys
import numpy as np
import tensorflow as tf
export_dir, sentences, images, bad = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:6], sys.argv[6:]
m = tf.saved_model.load(export_dir)
serve = m.signatures["serving_default"]
read = lambda p: open(p, "rb").read()
out = {"masks": {}, "probabilities": {}, "errors": {}}
for name in images:
    for s in sentences:
        r = serve(image_bytes=tf.constant(read(name)), expression=tf.constant(s))
        out["masks"][name + "|" + s] = r["mask"].numpy().tolist()
        out["probabilities"][name + "|" + s] = r["probabilities"].numpy().tolist()
        out["mask_dtype"] = r["mask"].dtype.name
cases = [("not_an_image", b"not an image at all", "the red circle"),
         ("truncated_png", read(images[0])[:60], "the red circle"),
         ("thin_image", read(bad[0]), "the red circle"),
         ("blank", read(images[0]), " \t\u3000 "),
         ("empty", read(images[0]), ""),
         ("not_utf8", read(images[0]), b"the \xff\xfe circle")]
for label, data, s in cases:
    try:
        serve(image_bytes=tf.constant(data), expression=tf.constant(s))
        out["errors"][label] = "no error"
    except tf.errors.InvalidArgumentError as e:
        out["errors"][label] = e.message
    # the loaded model stays usable after every error
    ok = serve(image_bytes=tf.constant(read(images[0])), expression=tf.constant("red"))
    out.setdefault("usable_after", []).append(list(ok["mask"].shape))
try:
    serve(image_bytes=tf.constant(3), expression=tf.constant("red"))
    out["wrong_dtype"] = "no error"
except (TypeError, ValueError, tf.errors.InvalidArgumentError) as e:
    out["wrong_dtype"] = type(e).__name__
one = serve(image_bytes=tf.constant(read(bad[1])), expression=tf.constant("red"))
out["one_by_one"] = list(one["mask"].shape)
ex = m.signatures["explain"](image_bytes=tf.constant(read(images[0])),
                             expression=tf.constant("the red circle, left"))
out["explain"] = {k: list(v.shape) for k, v in ex.items()}
out["explain_tokens"] = [t.decode() for t in ex["tokens"].numpy()]
out["explain_word_ids"] = ex["word_ids"].numpy().tolist()
rng = np.random.RandomState(3)
batch = m.signatures["segment_batch"](images=tf.constant(rng.randn(2, 64, 64, 3).astype(np.float32) * 50),
                                      words=tf.constant([[0, 0, 0, 4, 5, 6], [0, 0, 0, 0, 9, 6]], tf.int32))
out["batch_logits"] = batch["upsampled_logits"].numpy().tolist()
out["tf_rmi_imported"] = any(k == "tf_rmi" or k.startswith("tf_rmi.") for k in sys.modules)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    model = decisive_tiny_model(tiny_model_config(vocab_size=len(WORDS)))
    write_run(root, model, words=WORDS, vocab_path=str(root / "vocab.txt"))
    return str(root)


def _write(path, pixels, fmt):
    Image.fromarray(pixels).save(path, fmt)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A colour PNG, a JPEG, a grayscale PNG (three sizes), a too-thin and a 1x1 image."""
    root = str(tmp_path_factory.mktemp("images"))
    rng = np.random.RandomState(0)
    noise = lambda *shape: (rng.rand(*shape) * 255).astype(np.uint8)  # noqa: E731
    good = [_write(os.path.join(root, "a.png"), noise(50, 70, 3), "PNG"),
            _write(os.path.join(root, "b.jpg"), noise(90, 40, 3), "JPEG"),
            _write(os.path.join(root, "c.png"), noise(33, 33), "PNG")]
    bad = [_write(os.path.join(root, "thin.png"), noise(1, 400, 3), "PNG"),
           _write(os.path.join(root, "one.png"), noise(1, 1, 3), "PNG")]
    return good, bad


@pytest.fixture(scope="module")
def export_dir(run_dir, tmp_path_factory):
    return export_lib.export_run(run_dir, str(tmp_path_factory.mktemp("exports") / "tiny"))


@pytest.fixture(scope="module")
def fresh_process(export_dir, images):
    """What the SavedModel gives in an interpreter that never imports tf_rmi."""
    good, bad = images
    result = subprocess.run(
        [sys.executable, "-c", LOADER, export_dir, json.dumps(SENTENCES), *good, *bad],
        capture_output=True, text=True, timeout=600, cwd=os.path.dirname(export_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_fresh_process_does_not_import_tf_rmi(fresh_process):
    assert fresh_process["tf_rmi_imported"] is False


def test_saved_model_masks_equal_the_library_path(fresh_process, run_dir, images):
    predictor = RunPredictor(run_dir)
    for path in images[0]:
        pixels = load_image(path)  # Pillow: the JPEG must decode to the same pixels
        for sentence in SENTENCES:
            expected, _ = predictor(pixels, sentence)
            got = np.array(fresh_process["masks"][path + "|" + sentence], np.uint8)
            assert got.shape == pixels.shape[:2]
            assert set(np.unique(got)) <= {0, 1}
            assert 0 < got.mean() < 1, "a mask of one value would make the comparison vacuous"
            np.testing.assert_array_equal(got.astype(bool), expected,
                                          err_msg=f"{path} {sentence}")
    assert fresh_process["mask_dtype"] == "uint8"


def test_saved_model_probabilities_equal_the_library_path(fresh_process, run_dir, images):
    predictor = RunPredictor(run_dir)
    path = images[0][1]
    pixels = load_image(path)
    _, expected = predictor(pixels, SENTENCES[0])
    got = np.array(fresh_process["probabilities"][path + "|" + SENTENCES[0]], np.float32)
    assert got.shape == expected.shape == (90, 40)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("case,message", [
    ("not_an_image", "not a JPEG, PNG, GIF or BMP"),
    ("truncated_png", "PNG"),
    ("thin_image", "too thin"),
    ("blank", "empty or whitespace only"),
    ("empty", "empty or whitespace only"),
    ("not_utf8", "not valid UTF-8"),
])
def test_bad_input_is_an_invalid_argument_naming_the_problem(fresh_process, case, message):
    assert message in fresh_process["errors"][case]


def test_model_stays_usable_after_each_error(fresh_process):
    assert fresh_process["usable_after"] == [[50, 70]] * 6


def test_signature_rejects_a_wrong_dtype(fresh_process):
    assert fresh_process["wrong_dtype"] != "no error"


def test_one_pixel_image_gives_a_one_pixel_mask(fresh_process):
    assert fresh_process["one_by_one"] == [1, 1]


def test_explain_returns_per_word_maps_and_tokens(fresh_process):
    shapes = fresh_process["explain"]
    assert shapes["word_response_maps"] == shapes["word_masks"] == [6, 50, 70]
    assert shapes["mask"] == shapes["probabilities"] == [50, 70]
    assert fresh_process["explain_tokens"] == ["", "the", "red", "circle", ", ", "left"]
    assert fresh_process["explain_word_ids"] == [0, 4, 5, 6, 3, 7]


def test_segment_batch_equals_the_model(fresh_process, run_dir):
    predictor = RunPredictor(run_dir)
    rng = np.random.RandomState(3)
    images = rng.randn(2, 64, 64, 3).astype(np.float32) * 50
    words = np.array([[0, 0, 0, 4, 5, 6], [0, 0, 0, 0, 9, 6]], np.int32)
    expected = predictor.model((images, words))["upsampled_logits"].numpy()
    np.testing.assert_allclose(np.array(fresh_process["batch_logits"]), expected,
                               rtol=1e-4, atol=1e-2)


def test_export_carries_vocabulary_config_and_usage(export_dir):
    assets = os.listdir(os.path.join(export_dir, "assets"))
    assert "vocab.txt" in assets and "config.json" in assets
    usage = open(os.path.join(export_dir, "USAGE.md")).read()
    assert "tf.saved_model.load" in usage and "serving_default" in usage


def test_export_refuses_a_vocabulary_of_another_size(run_dir, tmp_path):
    other = str(tmp_path / "other.txt")
    write_vocabulary(WORDS + ["extra"], other)
    with pytest.raises(ValueError, match="has 11 words but the model embeds 10"):
        export_lib.export_run(run_dir, str(tmp_path / "x"), vocab_file=other)
    assert not os.path.exists(tmp_path / "x")


def test_export_refuses_to_replace_a_directory_that_is_not_a_saved_model(run_dir, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="is not a SavedModel"):
        export_lib.export_run(run_dir, str(tmp_path / "mine"))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_export_leaves_no_temporary_directory(export_dir):
    parent = os.path.dirname(export_dir)
    assert sorted(os.listdir(parent)) == [os.path.basename(export_dir)]


@pytest.mark.parametrize("sentence,unknown,dropped", [
    ("the red circle", 0, 0),
    ("zzz the qqq red", 2, 0),
    ("the big red circle left of the zzz circle", 0, 3),  # zzz is beyond T = 6
    ("qqq red circle left of big the red", 1, 2),
    ("!!!", 1, 0),
])
def test_serving_outputs_count_unknown_and_dropped_words(export_dir, images, sentence, unknown,
                                                         dropped):
    m = tf.saved_model.load(export_dir)
    data = open(images[0][0], "rb").read()
    for name in ("serving_default", "explain"):
        out = m.signatures[name](image_bytes=tf.constant(data), expression=tf.constant(sentence))
        assert int(out["num_unknown_words"]) == unknown, name
        assert int(out["num_dropped_words"]) == dropped, name
        assert out["num_unknown_words"].dtype == tf.int32


def test_export_directory_is_readable_by_others(export_dir):
    umask = os.umask(0o022)
    os.umask(umask)
    mode = os.stat(export_dir).st_mode & 0o777
    assert mode == 0o777 & ~umask
    if umask == 0o022:
        assert mode == 0o755


def test_export_uses_the_run_directory_vocabulary(run_dir, tmp_path):
    copy = copy_run_with_a_missing_config_vocabulary(run_dir, tmp_path / "copy")
    out = export_lib.export_run(copy, str(tmp_path / "exp"))
    assets = os.path.join(out, "assets")
    assert open(os.path.join(assets, "vocab.txt")).read().split() == WORDS


# ------------------------------------------------- bad requests and concurrency


def _encode(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def request_images():
    """name -> (bytes, expected): ("mask", (H, W)) or ("error", words the message must hold)."""
    rng = np.random.RandomState(7)
    rgb = Image.fromarray((rng.rand(40, 50, 3) * 255).astype(np.uint8))
    jpeg, png = _encode(rgb, "JPEG"), _encode(rgb, "PNG")
    frames = [Image.fromarray((rng.rand(20, 30, 3) * 255).astype(np.uint8)).convert("P")
              for _ in range(3)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    deep = Image.fromarray((rng.rand(20, 30) * 65535).astype(np.uint16))
    return {
        "png": (png, ("mask", (40, 50))),
        "jpeg": (jpeg, ("mask", (40, 50))),
        "cmyk_jpeg": (_encode(rgb.convert("CMYK"), "JPEG"), ("mask", (40, 50))),
        "png_16_bit": (_encode(deep, "PNG"), ("mask", (20, 30))),
        "rgba_png": (_encode(rgb.convert("RGBA"), "PNG"), ("mask", (40, 50))),
        "animated_gif": (gif.getvalue(), ("mask", (20, 30))),
        "one_pixel": (_encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"), ("mask", (1, 1))),
        "empty_bytes": (b"", ("error", "not a JPEG, PNG, GIF or BMP")),
        "text_bytes": (b"the red circle, in plain text", ("error", "not a JPEG, PNG, GIF or BMP")),
        "truncated_jpeg": (jpeg[:len(jpeg) // 2], ("error", "JPEG")),
        "corrupt_jpeg": (jpeg[:20] + b"\0" * 200, ("error", "JPEG")),
        "truncated_png": (png[:len(png) // 2], ("error", "PNG")),
        "corrupt_png": (png[:40] + b"\x13" * 100, ("error", "PNG")),
        # Refused from the header: 4097 x 4096 is one row over the limit.
        "very_large_png": (_encode(Image.new("L", (4096, 4097)), "PNG"), ("error", "too large")),
        "very_large_jpeg": (_encode(Image.new("L", (5000, 4000)), "JPEG"), ("error", "too large")),
    }


EXPRESSIONS = {
    "plain": ("the red circle", "mask"),
    "out_of_vocabulary": ("zebra giraffe", "mask"),
    "punctuation_only": ("?!", "mask"),  # one token, <unk>, as the original reads it
    "very_long": ("the red circle " * 3000, "mask"),
    "empty": ("", "empty or whitespace only"),
    "whitespace_only": (" \t\u3000\n", "empty or whitespace only"),
    "not_utf8": (b"the \xff\xfe circle", "not valid UTF-8"),
}


def _call(serve, data, expression):
    """('mask', mask, probabilities) or ('error', message); anything else propagates."""
    try:
        out = serve(image_bytes=tf.constant(data), expression=tf.constant(expression))
    except tf.errors.InvalidArgumentError as err:
        return ("error", err.message)
    return ("mask", out["mask"].numpy(), out["probabilities"].numpy())


def test_every_bad_request_gives_a_mask_or_an_error_naming_the_problem(export_dir):
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    for name, (data, (kind, expected)) in request_images().items():
        result = _call(serve, data, "the red circle")
        assert result[0] == kind, (name, result[1] if kind == "mask" else None)
        if kind == "mask":
            assert result[1].shape == expected and set(np.unique(result[1])) <= {0, 1}, name
        else:
            assert expected in result[1], (name, result[1])
    png = request_images()["png"][0]
    for name, (expression, expected) in EXPRESSIONS.items():
        result = _call(serve, png, expression)
        if expected == "mask":
            assert result[0] == "mask" and result[1].shape == (40, 50), name
        else:
            assert result[0] == "error" and expected in result[1], (name, result)


def test_eight_threads_mixing_good_and_bad_requests_match_single_threaded_calls(export_dir):
    import concurrent.futures

    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    images = request_images()
    requests = [(images[i][0], e) for i in ("png", "jpeg", "cmyk_jpeg", "animated_gif",
                                            "truncated_png", "text_bytes", "very_large_png")
                for e in ("the red circle", "zebra", "", b"\xff")]
    expected = [_call(serve, *r) for r in requests]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(_call, serve, *requests[i % len(requests)])
                   for i in range(3 * len(requests))]
        # Bounded: a hang fails here instead of blocking the suite.
        results = [f.result(timeout=300) for f in futures]
    assert {r[0] for r in expected} == {"mask", "error"}
    for i, got in enumerate(results):
        want = expected[i % len(requests)]
        assert got[0] == want[0]
        if got[0] == "mask":
            np.testing.assert_array_equal(got[1], want[1])
            np.testing.assert_array_equal(got[2], want[2])
        else:
            assert got[1].split("[[")[0] == want[1].split("[[")[0]


PREDICT_LOOP = r"""
import json, sys
from tf_rmi import cli
results = []
for image, expression in json.loads(sys.argv[1]):
    try:
        cli.run(["tf_rmi", "predict", "--saved_model=" + sys.argv[2], "--image=" + image,
                 "--expression=" + expression, "--output_dir=" + sys.argv[3]])
        results.append(["exit", 0])
    except SystemExit as exit:
        results.append(["exit", exit.code if isinstance(exit.code, (int, type(None))) else str(exit.code)])
    except BaseException as err:  # would be a traceback
        results.append(["raised", repr(err)])
print(json.dumps(results))
"""


def test_predict_command_gives_one_line_errors_for_bad_requests(export_dir, tmp_path):
    cases = []
    for name, (data, (kind, _)) in request_images().items():
        if kind == "error" or name in ("cmyk_jpeg", "png_16_bit"):
            path = tmp_path / name
            path.write_bytes(data)
            cases.append((str(path), "the red circle", kind))
    png = tmp_path / "good.png"
    png.write_bytes(request_images()["png"][0])
    for expression in ("", "   ", "?!", "the red circle " * 3000):
        cases.append((str(png), expression, "mask" if expression.strip() else "error"))
    result = subprocess.run(
        [sys.executable, "-c", PREDICT_LOOP, json.dumps([c[:2] for c in cases]), export_dir,
         str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
        cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    for (image, expression, kind), (how, code) in zip(cases, outcomes):
        assert how == "exit", (image, code)
        if kind == "mask":
            assert code in (0, None), (image, code)
        else:
            assert isinstance(code, str) and code.startswith("tf_rmi predict: "), (image, code)
            assert "\n" not in code and "Traceback" not in code, (image, code)

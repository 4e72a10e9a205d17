"""ReferringSegmenter: shapes, pad steps, both head formulations, and an
independent numpy computation of the original equations."""
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import tiny_model_config
from tf_rmi.models import segmenter

RNG = np.random.RandomState(0)
IMAGES = (RNG.randn(2, 64, 64, 3) * 50).astype(np.float32)
WORDS = np.array([[0, 0, 5, 3, 0, 7], [0, 1, 2, 3, 4, 5]], np.int32)


# ---------------------------------------------------------------- numpy reference

def _np_l2n(x):
    return x / np.sqrt(np.maximum(np.sum(x * x, -1, keepdims=True), 1e-12))


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _np_lstm(x, c, h, kernel, bias):
    z = np.concatenate([x, h], -1) @ kernel + bias
    i, j, f, o = np.split(z, 4, -1)
    c = c * _np_sigmoid(f + 1.0) + _np_sigmoid(i) * np.tanh(j)
    return c, np.tanh(c) * _np_sigmoid(o)


def _np_spatial(h, w):
    out = np.zeros((h, w, 8))
    for i in range(h):
        for j in range(w):
            xmin, xmax = j / w * 2 - 1, (j + 1) / w * 2 - 1
            ymin, ymax = i / h * 2 - 1, (i + 1) / h * 2 - 1
            out[i, j] = [xmin, ymin, xmax, ymax, (xmin + xmax) / 2, (ymin + ymax) / 2, 1 / w, 1 / h]
    return out


def _np_tf1_resize(x, out_h, out_w):
    """TF1 resize_bilinear: output i samples input i*in/out, clamped at the end."""
    in_h, in_w = x.shape[:2]
    out = np.zeros((out_h, out_w, x.shape[2]))
    for i in range(out_h):
        y = i * in_h / out_h
        y0 = int(np.floor(y)); y1 = min(y0 + 1, in_h - 1); fy = y - y0
        for j in range(out_w):
            xx = j * in_w / out_w
            x0 = int(np.floor(xx)); x1 = min(x0 + 1, in_w - 1); fx = xx - x0
            out[i, j] = ((1 - fy) * ((1 - fx) * x[y0, x0] + fx * x[y0, x1])
                         + fy * ((1 - fx) * x[y1, x0] + fx * x[y1, x1]))
    return out


def _np_rmi(model, visual, words, size):
    emb = model.embedding.numpy().astype(np.float64)
    wk, wb = model.lang_lstm.kernel.numpy(), model.lang_lstm.bias.numpy()
    ak, ab = model.mlstm.kernel.numpy(), model.mlstm.bias.numpy()
    k2, b2 = model.conv2.kernel.numpy()[0, 0], model.conv2.bias.numpy()
    h, w, _ = visual.shape
    v, s = _np_l2n(visual), _np_spatial(h, w)
    units, m = wk.shape[1] // 4, ak.shape[1] // 4
    c_w = h_w = np.zeros(units)
    c_a = h_a = np.zeros((h, w, m))
    for t in words:
        if t == 0:  # <pad>: nothing runs
            continue
        e = emb[t]
        c_w, h_w = _np_lstm(e, c_w, h_w, wk, wb)
        per_cell = np.concatenate([v, np.broadcast_to(e, (h, w, e.size)),
                                   np.broadcast_to(_np_l2n(h_w), (h, w, units)), s], -1)
        c_a, h_a = _np_lstm(per_cell, c_a, h_a, ak, ab)
    transformed = 0.5 * (np.log(1 + 1e-3 + h_a) - np.log(1 + 1e-3 - h_a))
    logits = np.maximum(transformed, 0) @ k2 + b2
    if size is None:  # the logits only: the resizes are a Python loop over every pixel
        return logits, None, None
    return (logits, _np_tf1_resize(logits, size, size),
            _np_tf1_resize(transformed, size, size).mean(-1))


def _np_lstm_baseline(model, visual, words, size):
    emb = model.embedding.numpy().astype(np.float64)
    wk, wb = model.lang_lstm.kernel.numpy(), model.lang_lstm.bias.numpy()
    k1, b1 = model.conv1.kernel.numpy()[0, 0], model.conv1.bias.numpy()
    k2, b2 = model.conv2.kernel.numpy()[0, 0], model.conv2.bias.numpy()
    h, w, _ = visual.shape
    units = wk.shape[1] // 4
    c_w = h_w = np.zeros(units)
    for t in words:
        if t != 0:
            c_w, h_w = _np_lstm(emb[t], c_w, h_w, wk, wb)
    feat = np.concatenate([_np_l2n(visual), np.broadcast_to(_np_l2n(h_w), (h, w, units)),
                           _np_spatial(h, w)], -1)
    logits = np.maximum(feat @ k1 + b1, 0) @ k2 + b2
    return logits, _np_tf1_resize(logits, size, size)


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("kind", ["RMI", "LSTM"])
def test_output_shapes_and_dtypes(kind):
    model = segmenter.build_model(tiny_model_config(model=kind))
    out = model((IMAGES, WORDS))
    assert out["logits"].shape == (2, 8, 8, 1)
    assert out["upsampled_logits"].shape == (2, 64, 64, 1)
    assert out["probabilities"].shape == (2, 64, 64, 1)
    assert ("response_map" in out) == (kind == "RMI")
    if kind == "RMI":
        assert out["response_map"].shape == (2, 64, 64)
    assert all(t.dtype == tf.float32 for t in out.values())


def test_rmi_matches_numpy_reference_of_the_original_equations():
    model = segmenter.build_model(tiny_model_config())
    out = model((IMAGES, WORDS))
    visual = model.visual_features(IMAGES).numpy().astype(np.float64)
    for b in range(2):
        logits, up, response = _np_rmi(model, visual[b], WORDS[b], 64)
        np.testing.assert_allclose(out["logits"][b].numpy(), logits, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out["upsampled_logits"][b].numpy(), up, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out["response_map"][b].numpy(), response, rtol=1e-4, atol=1e-5)


def test_lstm_baseline_matches_numpy_reference():
    model = segmenter.build_model(tiny_model_config(model="LSTM"))
    out = model((IMAGES, WORDS))
    visual = model.visual_features(IMAGES).numpy().astype(np.float64)
    for b in range(2):
        logits, up = _np_lstm_baseline(model, visual[b], WORDS[b], 64)
        np.testing.assert_allclose(out["logits"][b].numpy(), logits, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out["upsampled_logits"][b].numpy(), up, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["RMI", "LSTM"])
def test_pad_steps_leave_every_state_unchanged(kind):
    model = segmenter.build_model(tiny_model_config(model=kind))
    padded = np.array([[0, 0, 0, 4, 9, 2], [0, 4, 0, 9, 0, 2]], np.int32)
    unpadded = np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], np.int32)
    unpadded[:, 3:] = [4, 9, 2]
    images = np.repeat(IMAGES[:1], 2, axis=0)
    a = model((images, padded))["logits"].numpy()
    b = model((images, unpadded))["logits"].numpy()
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6, atol=1e-6)  # zeros in the middle
    np.testing.assert_allclose(a[0], b[0], rtol=1e-6, atol=1e-6)


def test_efficient_and_straightforward_heads_agree_with_gradients():
    fast = segmenter.build_model(tiny_model_config(efficient_head=True))
    slow = segmenter.build_model(tiny_model_config(efficient_head=False))
    slow.set_weights(fast.get_weights())
    grads = []
    for model in (fast, slow):
        with tf.GradientTape() as tape:
            out = model((IMAGES, WORDS))
            loss = tf.reduce_sum(out["logits"] ** 2)
        grads.append(tape.gradient(loss, model.trainable_variables))
        np.testing.assert_allclose(out["logits"].numpy(),
                                   fast((IMAGES, WORDS))["logits"].numpy(), rtol=1e-5, atol=1e-6)
    for g_fast, g_slow in zip(*grads):
        np.testing.assert_allclose(tf.convert_to_tensor(g_fast).numpy(),
                                   tf.convert_to_tensor(g_slow).numpy(), rtol=1e-4, atol=1e-5)


def test_shared_trunk_segment_equals_full_calls():
    model = segmenter.build_model(tiny_model_config())
    visual = model.visual_features(IMAGES[:1])
    shared = model.segment(visual, WORDS, image_index=[0, 0])
    full = model((np.repeat(IMAGES[:1], 2, axis=0), WORDS))
    np.testing.assert_allclose(shared["upsampled_logits"].numpy(),
                               full["upsampled_logits"].numpy(), rtol=1e-6, atol=1e-6)


def test_one_image_segment_runs_each_expression_only_on_its_steps_and_agrees():
    # Unsorted lengths, a <pad> in the middle, an expression without words and
    # a duplicate: each must equal its own full call.
    model = segmenter.build_model(tiny_model_config())
    words = np.array([[0, 0, 5, 3, 0, 7], [0, 1, 2, 3, 4, 5], [0, 0, 0, 0, 0, 0],
                      [0, 0, 0, 0, 9, 8], [0, 0, 5, 3, 0, 7]], np.int32)
    visual = model.visual_features(IMAGES[:1])
    one = model.segment_one_image(visual, words)
    full = model((np.repeat(IMAGES[:1], len(words), axis=0), words))
    for key in ("logits", "upsampled_logits", "probabilities", "response_map"):
        np.testing.assert_allclose(one[key].numpy(), full[key].numpy(), rtol=1e-5, atol=1e-6)
    traced = tf.function(model.segment_one_image)(visual, tf.constant(words[1:2]))
    np.testing.assert_allclose(traced["logits"].numpy(), full["logits"].numpy()[1:2],
                               rtol=1e-5, atol=1e-6)


def test_word_maps_end_with_the_final_maps():
    model = segmenter.build_model(tiny_model_config())
    out = model.segment(model.visual_features(IMAGES), WORDS, return_word_maps=True)
    assert out["word_response_maps"].shape == (2, 6, 64, 64)
    assert out["word_logits"].shape == (2, 6, 8, 8, 1)
    np.testing.assert_allclose(out["word_response_maps"][:, -1].numpy(),
                               out["response_map"].numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["word_logits"][:, -1].numpy(), out["logits"].numpy(),
                               rtol=1e-6, atol=1e-6)


def test_recipe_variable_sets():
    model = segmenter.build_model(tiny_model_config(model="LSTM", trunk="small"))
    decayed = {v.path for v in model.decayed_kernels()}
    assert any("conv1" in p and "DW" in p for p in decayed)
    assert not any("WLSTM" in p or "embedding" in p for p in decayed)
    biases = {v.path for v in model.bias_variables()}
    assert not any("WLSTM" in p for p in biases)  # TF 1.2 names LSTM biases `bias`


def test_checkpoint_and_keras_file_round_trip(tmp_path):
    model = segmenter.build_model(tiny_model_config())
    expected = model((IMAGES, WORDS))["logits"].numpy()
    prefix = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    other = segmenter.build_model(tiny_model_config())
    tf.train.Checkpoint(model=other).restore(prefix).assert_existing_objects_matched()
    np.testing.assert_allclose(other((IMAGES, WORDS))["logits"].numpy(), expected, rtol=1e-6)
    import keras
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded((IMAGES, WORDS))["logits"].numpy(), expected, rtol=1e-6)


def test_spatial_features_follow_the_original_formula():
    feats = segmenter.spatial_features(2, 4)
    np.testing.assert_allclose(feats[1, 3], [0.5, 0.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.5])

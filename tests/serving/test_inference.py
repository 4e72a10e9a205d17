"""inference: the threshold, the inverse transform, one mask for every path, image sniffing."""
import io

import numpy as np
import pytest
from PIL import Image

from tests.conftest import TINY_WORDS
from tf_rmi.serving import inference
from tf_rmi.config import EvalConfig
from tf_rmi.data import image_ops

SIZE = 64  # tiny_model_config's input_size


def _numpy_mask(logits, h, w):
    return inference.logits_to_mask(logits, h, w)


def _graph_mask(logits, h, w):
    return inference.logits_to_mask_tf(logits, h, w).numpy()


@pytest.mark.parametrize("to_mask", [_numpy_mask, _graph_mask], ids=["numpy", "graph"])
def test_a_logit_at_the_threshold_is_foreground_and_just_below_is_not(to_mask):
    at = np.float32(inference.THRESHOLD)  # the model's logits are float32
    below = np.nextafter(at, np.float32(0))
    logits = np.full((SIZE, SIZE), below, np.float32)
    logits[:, SIZE // 2:] = at
    mask = to_mask(logits, SIZE, SIZE)
    assert mask[:, SIZE // 2:].all()
    assert not mask[:, :SIZE // 2].any()


def test_the_inverse_transform_restores_a_non_square_images_size_and_object():
    h, w = 45, 61
    truth = np.zeros((h, w), bool)
    truth[10:30, 5:25] = True
    padded = image_ops.resize_and_pad_mask(truth, SIZE)
    logits = np.where(padded, 5.0, -5.0).astype(np.float32)
    mask = inference.logits_to_mask(logits, h, w)
    probabilities = inference.unpad_map(1 / (1 + np.exp(-logits)), h, w)
    assert mask.shape == probabilities.shape == (h, w)
    # The original's non-zero rule keeps the whole object and adds at most a
    # one-pixel rim (the resized 0/1 map's soft edge).
    rim = np.zeros((h, w), bool)
    rim[9:31, 4:26] = True
    assert mask[truth].all() and not mask[~rim].any()
    assert np.all(mask[probabilities > 0.5])


def test_evaluation_scores_at_the_one_threshold():
    assert EvalConfig().threshold == inference.THRESHOLD


def test_the_evaluation_path_and_the_predictor_give_the_same_mask(tiny_run_dir):
    """eval_lib's path (ModelRunner's shared trunk on `preprocess_image`, then
    `logits_to_mask` at EvalConfig's threshold) and RunPredictor's agree."""
    from tf_rmi.evaluation import eval_lib
    from tf_rmi.serving.predict import RunPredictor

    predictor = RunPredictor(tiny_run_dir)
    image = (np.random.RandomState(3).rand(45, 61, 3) * 255).astype(np.uint8)
    sentence = "the big red circle"
    predicted, _ = predictor(image, sentence)

    cfg = predictor.model.config
    _, model_input = inference.preprocess_image(image, cfg.input_size)
    words = predictor.vocab.encode(sentence, cfg.num_words)
    logits = eval_lib.ModelRunner(predictor.model).shared_trunk(model_input, words[None])[0]
    evaluated = inference.logits_to_mask(logits, 45, 61, EvalConfig().threshold)
    assert 0 < evaluated.mean() < 1
    np.testing.assert_array_equal(evaluated, predicted)


def _encoded(fmt):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("data,expected", [
    (_encoded("PNG"), "png"), (_encoded("JPEG"), "jpeg"), (_encoded("GIF"), "gif"),
    (_encoded("BMP"), "bmp"), (_encoded("TIFF"), None), (b"not an image", None), (b"", None)])
def test_image_formats_are_sniffed_from_their_leading_bytes(data, expected):
    assert inference.sniff_image_format(data) == expected


def test_prepare_gives_the_models_inputs_for_an_image_and_an_expression():
    from tf_rmi.data.text import Vocabulary

    image = (np.random.RandomState(4).rand(45, 61) * 255).astype(np.uint8)  # grayscale
    inputs = inference.prepare(image, "the red circle", Vocabulary(TINY_WORDS), SIZE, 6)
    assert inputs.original_size == (45, 61) and inputs.rgb.shape == (45, 61, 3)
    np.testing.assert_array_equal(inputs.padded, image_ops.resize_and_pad(image, SIZE))
    np.testing.assert_array_equal(inputs.image, image_ops.caffe_preprocess(inputs.padded))
    assert inputs.image.dtype == np.float32
    np.testing.assert_array_equal(inputs.words, [0, 0, 0, 4, 5, 6])

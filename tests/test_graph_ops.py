"""In-graph preprocessing equals the Python/numpy versions."""
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import shared_path
from tf_rmi import graph_ops
from tf_rmi.data import image_ops, text

TRICKY = ["man, left", "the man .", "the man.", "A B", "  leading space", "tab\tseparated",
          "man,,  left!!", "café au lait", "number 2 from the left", ".", "Man on the RIGHT.",
          "a , b", "it's the \"red\" one", "x" * 30, " ".join(["w"] * 25), "über-cool thing"]


@pytest.mark.parametrize("vocab_name", ["vocabulary_Gref.txt", "vocabulary_referit.txt"])
def test_in_graph_tokenisation_equals_the_python_tokenizer(vocab_name):
    vocab = text.Vocabulary.from_file(shared_path("vocab", vocab_name))
    table = graph_ops.vocab_table(vocab)
    for sentence in TRICKY:
        got = graph_ops.tokenize_and_encode_tf(tf.constant(sentence), table, 20).numpy()
        np.testing.assert_array_equal(got, vocab.encode(sentence, 20), err_msg=sentence)


def test_in_graph_tokens_equal_python_tokens():
    for sentence in TRICKY:
        got = [t.decode() for t in graph_ops.tokenize_tf(tf.constant(sentence)).numpy()]
        assert got == text.tokenize(sentence), sentence


@pytest.mark.parametrize("h,w", [(37, 53), (64, 20), (100, 100), (9, 71), (1, 1)])
def test_resize_and_pad_tf_equals_numpy(h, w):
    image = (np.random.RandomState(h * w).rand(h, w, 3) * 255).astype(np.uint8)
    np.testing.assert_array_equal(graph_ops.resize_and_pad_tf(image, 48).numpy(),
                                  image_ops.resize_and_pad(image, 48))


@pytest.mark.parametrize("h,w", [(37, 53), (64, 20), (100, 100)])
def test_inverse_resize_and_pad_tf_equals_numpy(h, w):
    pred = np.random.RandomState(1).rand(48, 48) > 0.7
    np.testing.assert_array_equal(graph_ops.inverse_resize_and_pad_tf(pred, h, w).numpy(),
                                  image_ops.inverse_resize_and_pad(pred, h, w))

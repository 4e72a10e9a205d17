"""In-graph preprocessing equals the Python/numpy versions."""
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import shared_path
from tf_rmi.serving import graph_ops
from tf_rmi.data import image_ops, text

TRICKY = ["man, left", "the man .", "the man.", "A B", "  leading space", "tab\tseparated",
          "man,,  left!!", "café au lait", "number 2 from the left", ".", "Man on the RIGHT.",
          "a , b", "it's the \"red\" one", "x" * 30, " ".join(["w"] * 25), "über-cool thing",
          "\u00a0man\u00a0", "man \u3000 left", "İstanbul", "STRASSE ß", "ΣΑΣ", "\x1cman\x1f",
          "x\x85", "a\u00a0,b", "a.\u00a0.", "a\x00b", "x \x00\x00 y.", "\x01\x00 x",
          "À\x00É x", "left..", "left .", "man , .", "2nd_from-left", "guy\n"]

# Characters the fuzz test draws from: ASCII word and punctuation characters,
# every kind of Python whitespace, non-ASCII letters with case, NUL and \x01.
ALPHABET = (list("aZ_9 .,'-\t\n") + ["\x00", "\x01", "\x1c", "\x85", "\u00a0", "\u2003",
                                      "\u3000", "É", "é", "ß", "İ", "Σ", "ж", "Ж", "猫"])


def _python_tokens(sentence):
    try:
        return text.tokenize(sentence)
    except text.EmptySentenceError:
        return []  # the graph version gives no tokens (serving asserts before)


@pytest.mark.parametrize("vocab_name", ["vocabulary_Gref.txt", "vocabulary_referit.txt"])
def test_in_graph_tokenisation_equals_the_python_tokenizer(vocab_name):
    path = shared_path("vocab", vocab_name)
    vocab = text.Vocabulary.from_file(path)
    table = graph_ops.vocab_table_from_file(path)
    for sentence in TRICKY + ["\", \" he said", "the man , \""]:
        got = graph_ops.tokenize_and_encode_tf(tf.constant(sentence), table, 20).numpy()
        np.testing.assert_array_equal(got, vocab.encode(sentence, 20), err_msg=repr(sentence))


def test_duplicate_vocabulary_lines_keep_the_later_id_as_python():
    vocab = text.Vocabulary.from_file(shared_path("vocab", "vocabulary_Gref.txt"))
    table = graph_ops.vocab_table(vocab)
    assert int(table.lookup(tf.constant("."))) == vocab.id_of(".") == 6108


def test_in_graph_tokens_equal_python_tokens():
    for sentence in TRICKY:
        got = [t.decode() for t in graph_ops.tokenize_tf(tf.constant(sentence)).numpy()]
        assert got == _python_tokens(sentence), repr(sentence)


def test_in_graph_tokens_equal_python_tokens_on_random_strings():
    tokenize = tf.function(graph_ops.tokenize_tf)
    rng = np.random.RandomState(0)
    for _ in range(300):
        sentence = "".join(rng.choice(ALPHABET, size=rng.randint(0, 12)))
        got = [t.decode() for t in tokenize(tf.constant(sentence)).numpy()]
        assert got == _python_tokens(sentence), repr(sentence)


def test_whitespace_class_is_pythons_isspace():
    chars = [chr(c) for c in range(0x3100)]
    blank = graph_ops.is_blank_tf(tf.constant([c.encode("utf-8", "surrogatepass")
                                               for c in chars])).numpy()
    assert [c for c, b in zip(chars, blank) if b] == [c for c in chars if c.isspace()]


def test_is_valid_utf8():
    got = graph_ops.is_valid_utf8_tf(tf.constant([b"caf\xc3\xa9", b"caf\xe9", b"\xef\xbf\xbd",
                                                  b""])).numpy()
    assert got.tolist() == [True, False, True, True]


@pytest.mark.parametrize("h,w,size", [(37, 53, 48), (64, 20, 48), (100, 100, 48), (9, 71, 48),
                                      (1, 1, 48), (3, 2, 48), (200, 301, 320), (480, 640, 320)])
def test_resize_and_pad_tf_equals_numpy(h, w, size):
    image = (np.random.RandomState(h * w).rand(h, w, 3) * 255).astype(np.uint8)
    np.testing.assert_array_equal(graph_ops.resize_and_pad_tf(image, size).numpy(),
                                  image_ops.resize_and_pad(image, size))


@pytest.mark.parametrize("h,w", [(37, 53), (64, 20), (100, 100), (1, 1), (500, 31)])
def test_inverse_resize_and_pad_tf_equals_numpy(h, w):
    pred = np.random.RandomState(1).rand(48, 48) > 0.7
    np.testing.assert_array_equal(graph_ops.inverse_resize_and_pad_tf(pred, h, w).numpy(),
                                  image_ops.inverse_resize_and_pad(pred, h, w))


@pytest.mark.parametrize("seed", range(6))
def test_resize_and_pad_tf_equals_numpy_on_narrow_range_images(seed):
    # min > 0: samples reading the constant-0 border must be clipped to the
    # image's range, as skimage 0.13; a constant image (seed 0) is the extreme.
    rng = np.random.RandomState(seed)
    h, w = rng.randint(2, 80, size=2)
    low = rng.randint(1, 200)
    image = rng.randint(low, low + 1 + 10 * seed, size=(h, w, 3)).astype(np.uint8)
    np.testing.assert_array_equal(graph_ops.resize_and_pad_tf(image, 48).numpy(),
                                  image_ops.resize_and_pad(image, 48))

"""The tokenizer and vocabulary reproduce the original release's word ids."""
import os

import numpy as np
import pytest

from tf_rmi.data import text
from tests.conftest import shared_path

VOCAB_FILES = {"Gref": ("vocabulary_Gref.txt", 12112),
               "referit": ("vocabulary_referit.txt", 8803)}


def _plain_lookup(path):
    """An independent reading of a vocabulary file: later duplicates win."""
    with open(path, encoding="utf-8") as f:
        words = [line.strip() for line in f.read().split("\n")[:-1]]
    return {w: i for i, w in enumerate(words)}


@pytest.fixture(params=sorted(VOCAB_FILES))
def vocab_pair(request):
    name, _ = VOCAB_FILES[request.param]
    path = shared_path("vocab", name)
    return request.param, text.Vocabulary.from_file(path), _plain_lookup(path)


def _expected(lookup, tokens, num_words=20):
    ids = [lookup.get(t, lookup["<unk>"]) for t in tokens][:num_words]
    return [0] * (num_words - len(ids)) + ids


# Sentence -> tokens, worked out by hand from the original's rules.
TOKEN_CASES = [
    ("man, left", ["man", ", ", "left"]),
    ("the man .", ["the", "man", " ."]),
    ("the man.", ["the", "man"]),
    ("A B", ["a", "b"]),
    ("  leading", ["leading"]),
    ("left\tman\t", ["left", "man"]),
    ("man,,  left!!", ["man", ",,  ", "left", "!!"]),
    ("café left", ["caf", "é ", "left"]),
    ("2 people 3rd from left", ["2", "people", "3rd", "from", "left"]),
    ("a.b", ["a", ".", "b"]),
    ("red shirt..", ["red", "shirt", ".."]),
    ("MAN", ["man"]),
]


@pytest.mark.parametrize("sentence,tokens", TOKEN_CASES)
def test_tokenize_matches_hand_worked_tokens(sentence, tokens):
    assert text.tokenize(sentence) == tokens


@pytest.mark.parametrize("sentence,tokens", TOKEN_CASES)
def test_encode_gives_ids_of_hand_worked_tokens(vocab_pair, sentence, tokens):
    _, vocab, lookup = vocab_pair
    got = vocab.encode(sentence)
    assert got.dtype == np.int32 and got.shape == (20,)
    assert got.tolist() == _expected(lookup, tokens)


def test_vocabulary_sizes_and_special_ids(vocab_pair):
    name, vocab, lookup = vocab_pair
    assert len(vocab) == VOCAB_FILES[name][1]
    assert vocab.pad_id == 0 and vocab.id_of("<pad>") == 0
    assert vocab.id_of("<go>") == 1 and vocab.id_of("<eos>") == 2
    assert vocab.unk_id == 3
    assert vocab.id_of("man") == lookup["man"]


def test_absolute_ids_read_off_the_gref_file():
    vocab = text.Vocabulary.from_file(shared_path("vocab", "vocabulary_Gref.txt"))
    # Line 5 (0-based 4) holds "raining"; "." is on lines 511 and 6108 and the
    # later one wins, as in the original's dict comprehension.
    assert vocab.id_of("raining") == 4
    assert vocab.id_of(".") == 6108
    assert vocab.id_of(', "') == 4346
    assert vocab.encode("man, left").tolist()[-3:] == [
        vocab.id_of("man"), 3, vocab.id_of("left")]


def test_absolute_ids_read_off_the_referit_file():
    vocab = text.Vocabulary.from_file(shared_path("vocab", "vocabulary_referit.txt"))
    assert vocab.id_of("a") == 4
    assert vocab.id_of(', "') == 2493
    assert vocab.id_of(". .") == 5412
    assert vocab.id_of("zookeeper") == 8802


def test_separator_piece_with_space_is_unknown_even_if_its_stripped_form_exists(vocab_pair):
    _, vocab, lookup = vocab_pair
    assert "," in lookup or "." in lookup
    assert vocab.id_of(", ") == vocab.unk_id
    assert vocab.id_of(" .") == vocab.unk_id


def test_long_sentence_keeps_the_first_20_ids(vocab_pair):
    _, vocab, lookup = vocab_pair
    words = ["man", "left", "the", "red", "shirt"] * 5  # 25 tokens
    got = vocab.encode(" ".join(words))
    assert got.tolist() == [lookup[w] for w in words[:20]]


def test_short_sentence_is_padded_at_the_front(vocab_pair):
    _, vocab, lookup = vocab_pair
    got = vocab.encode("left man", num_words=5)
    assert got.tolist() == [0, 0, 0, lookup["left"], lookup["man"]]


def test_all_unknown_sentence_encodes_to_unk():
    vocab = text.Vocabulary.from_file(shared_path("vocab", "vocabulary_referit.txt"))
    assert vocab.encode("qqqzx wwvvx", num_words=4).tolist() == [0, 0, 3, 3]


def test_lone_dot_encodes_to_all_padding():
    vocab = text.Vocabulary.from_file(shared_path("vocab", "vocabulary_referit.txt"))
    assert vocab.encode(".", num_words=3).tolist() == [0, 0, 0]


@pytest.mark.parametrize("sentence", ["", "   ", "\t\n"])
def test_empty_sentence_raises(sentence):
    with pytest.raises(text.EmptySentenceError, match="empty sentence"):
        text.tokenize(sentence)
    assert issubclass(text.EmptySentenceError, ValueError)


def test_utf8_bytes_are_decoded():
    assert text.tokenize("Café left".encode("utf-8")) == ["caf", "é ", "left"]


def test_undecodable_bytes_raise_value_error():
    with pytest.raises(ValueError, match="undecodable sentence"):
        text.tokenize(b"man \xff\xfe left")


def test_build_vocabulary_orders_by_count_then_alphabet():
    tokens = text.build_vocabulary(["b a", "a c.", "c a, b", "   "], min_count=1)
    # counts: a 3, b 2, c 2; ", " has surrounding space and is left out.
    assert tokens == ["<pad>", "<go>", "<eos>", "<unk>", "a", "b", "c"]


def test_build_vocabulary_applies_min_count():
    tokens = text.build_vocabulary(["b a", "a c", "a"], min_count=2)
    assert tokens == ["<pad>", "<go>", "<eos>", "<unk>", "a"]


def test_written_vocabulary_reads_back(tmp_path):
    tokens = ["<pad>", "<go>", "<eos>", "<unk>", "man", ', "']
    path = text.write_vocabulary(tokens, str(tmp_path / "sub" / "vocab.txt"))
    assert text.Vocabulary.from_file(path).tokens == tokens
    assert os.listdir(tmp_path / "sub") == ["vocab.txt"]


def test_write_vocabulary_rejects_tokens_that_would_not_read_back(tmp_path):
    with pytest.raises(ValueError, match="read back"):
        text.write_vocabulary(["<pad>", "<unk>", ", "], str(tmp_path / "v.txt"))
    assert not os.listdir(tmp_path)


def test_missing_vocabulary_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        text.Vocabulary.from_file(str(tmp_path / "nope.txt"))

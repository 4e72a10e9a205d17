"""Referring-expression text: the original release's tokenizer and vocabulary.

Reproduces `util/text_processing.py` of the original release exactly, because
the word ids select the embedding rows of a trained snapshot:

1. strip the sentence, split it with the regular expression `(\\W+)` keeping
   the separators (ASCII `\\W`, as Python 2's `re` without `re.UNICODE`, so a
   non-ASCII letter such as 'é' is a separator);
2. keep the pieces that are non-empty after stripping, but keep them as they
   are (a separator piece such as ", " keeps its space);
3. lowercase each piece;
4. drop the last piece if it is exactly ".";
5. map each piece through the vocabulary (unknown pieces -> `<unk>`);
6. keep the first T ids and pad short sequences at the FRONT with `<pad>` (0).
   No `<eos>` is appended.

The vocabulary file has one word per line; the word is the stripped line and
its id is the line number (0-based). As in the original (a dict built in line
order), when two lines strip to the same word the LATER line's id wins: in
`vocabulary_Gref.txt` "." sits on lines 511 and 6108, so "." maps to 6108.
"""
from __future__ import annotations

import collections
import os
import re
import tempfile
from typing import Dict, Iterable, List, Sequence, Union

import numpy as np

PAD_TOKEN = "<pad>"
GO_TOKEN = "<go>"
EOS_TOKEN = "<eos>"
UNK_TOKEN = "<unk>"
SPECIAL_TOKENS = (PAD_TOKEN, GO_TOKEN, EOS_TOKEN, UNK_TOKEN)
DEFAULT_NUM_WORDS = 20  # T in the original

# ASCII semantics: the release ran under Python 2, whose `\W` without
# re.UNICODE treats every non-ASCII character as a non-word character.
_SPLIT_REGEX = re.compile(r"(\W+)", re.ASCII)
# Python 2's `str.strip()` on the vocabulary file's byte lines strips ASCII
# whitespace only.
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"


class EmptySentenceError(ValueError):
    """The sentence is empty or whitespace only: it has no words to encode."""


class UndecodableSentenceError(ValueError):
    """A bytes sentence that is not valid UTF-8."""


def _as_text(sentence: Union[str, bytes]) -> str:
    """Returns `sentence` as str, decoding UTF-8 bytes."""
    if isinstance(sentence, str):
        return sentence
    if isinstance(sentence, (bytes, bytearray, np.bytes_)):
        try:
            return bytes(sentence).decode("utf-8")
        except UnicodeDecodeError as err:
            raise UndecodableSentenceError(
                f"undecodable sentence {bytes(sentence)[:60]!r}: not valid UTF-8 "
                f"({err.reason} at byte {err.start}); re-encode the annotation "
                "file as UTF-8") from err
    raise TypeError(f"A sentence must be str or UTF-8 bytes, got {type(sentence).__name__}")


def tokenize(sentence: Union[str, bytes]) -> List[str]:
    """Splits a referring expression into tokens exactly as the original.

    Examples: "man, left" -> ["man", ", ", "left"]; "the man ." -> ["the",
    "man", " ."]; "the man." -> ["the", "man"]; "café" -> ["caf", "é"];
    "." -> [] (encoded as all padding, as in the original).

    Raises:
      EmptySentenceError: for an empty or whitespace-only sentence (the
        original crashed on these with an IndexError).
      UndecodableSentenceError: for bytes that are not UTF-8.
    """
    text = _as_text(sentence)
    if not text.strip():
        raise EmptySentenceError(
            f"empty sentence {text!r}: a referring expression needs at least one word")
    pieces = _SPLIT_REGEX.split(text.strip())
    tokens = [piece.lower() for piece in pieces if piece.strip()]
    # Only an exact final "." is dropped; " ." (space before the dot) stays.
    if tokens and tokens[-1] == ".":
        tokens = tokens[:-1]
    return tokens


def read_vocabulary_lines(path: str) -> List[str]:
    """The stripped lines of a vocabulary file, in order (line number = id)."""
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"Vocabulary file {path} not found: pass the original vocabulary "
            "(vocabulary_Gref.txt or vocabulary_referit.txt) or the one "
            "`make preprocess` wrote beside the records.")
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines = lines[:-1]  # a final newline does not start another line
    try:
        return [line.decode("utf-8").strip(_ASCII_WHITESPACE) for line in lines]
    except UnicodeDecodeError as err:
        raise ValueError(f"Vocabulary file {path} is not UTF-8 text: {err}") from err


class Vocabulary:
    """Word <-> id mapping with the original's lookup rules.

    `tokens[i]` is line i of the file (stripped); `len()` is the number of
    lines, i.e. the number of embedding rows.
    """

    def __init__(self, tokens: Sequence[str]):
        self.tokens: List[str] = list(tokens)
        # Later lines override earlier ones, as the original's dict comprehension.
        self._ids: Dict[str, int] = {word: i for i, word in enumerate(self.tokens)}
        for special in (PAD_TOKEN, UNK_TOKEN):
            if special not in self._ids:
                raise ValueError(f"Vocabulary lacks {special}: it must begin with "
                                 f"{' '.join(SPECIAL_TOKENS)}")
        if self._ids[PAD_TOKEN] != 0:
            raise ValueError(f"{PAD_TOKEN} must be id 0 (the first line), "
                             f"found at {self._ids[PAD_TOKEN]}")

    @classmethod
    def from_file(cls, path: str) -> "Vocabulary":
        return cls(read_vocabulary_lines(path))

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return self._ids[UNK_TOKEN]

    def id_of(self, token: str) -> int:
        """The id of `token`, or `unk_id` when it is not in the vocabulary."""
        return self._ids.get(token, self._ids[UNK_TOKEN])

    def __contains__(self, token: str) -> bool:
        return token in self._ids

    def token_ids(self, sentence: Union[str, bytes]) -> List[int]:
        """All ids of the sentence's tokens, untruncated and unpadded."""
        return [self.id_of(token) for token in tokenize(sentence)]

    def encode(self, sentence: Union[str, bytes],
               num_words: int = DEFAULT_NUM_WORDS) -> np.ndarray:
        """int32 [num_words]: the first `num_words` ids, front-padded with 0."""
        if num_words < 1:
            raise ValueError(f"num_words must be positive, got {num_words}")
        ids = self.token_ids(sentence)[:num_words]
        out = np.full([num_words], self.pad_id, dtype=np.int32)
        if ids:
            out[num_words - len(ids):] = ids
        return out


def build_vocabulary(sentences: Iterable[Union[str, bytes]], min_count: int = 1) -> List[str]:
    """A vocabulary for new data, in the original files' layout.

    Returns `<pad> <go> <eos> <unk>` followed by every token seen at least
    `min_count` times, by descending count, ties in alphabetical order.
    Empty sentences are skipped, and so are pieces with surrounding
    whitespace (they could not be read back from the file).
    """
    counts: collections.Counter = collections.Counter()
    for sentence in sentences:
        try:
            counts.update(tokenize(sentence))
        except EmptySentenceError:
            continue
    # A piece with surrounding spaces (", ") can never match a stripped
    # vocabulary line, so it stays <unk> as in the original; leave it out.
    words = [w for w, n in counts.items()
             if n >= min_count and w not in SPECIAL_TOKENS and w == w.strip(_ASCII_WHITESPACE)]
    words.sort(key=lambda w: (-counts[w], w))
    return list(SPECIAL_TOKENS) + words


def write_vocabulary(tokens: Sequence[str], path: str) -> str:
    """Writes one token per line, atomically (temp file, then rename).

    A token that would not read back as itself (one containing a newline or
    with surrounding whitespace that stripping removes) is rejected.
    """
    for i, token in enumerate(tokens):
        if "\n" in token or token != token.strip(_ASCII_WHITESPACE) or not token:
            raise ValueError(f"Vocabulary token {i} {token!r} would not read back "
                             "unchanged (empty, newline, or surrounding whitespace)")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".vocab-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for token in tokens:
                f.write(token + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path

"""Writes the TFRecords of one dataset (the original's `build_batches.py`).

    python -m preprocess.build_data --dataset=unc --data_root=data/refer \
        --output_dir=data/tfrecords [--splits=train,val] [--vocab_file=...]

Datasets: unc, unc+, Gref, Gref_umd (REFER layout under --data_root),
referit (the original's data/referit/ layout) and shapes (synthetic, needs
no --data_root). Output: <output_dir>/<dataset>/<split>-NNNNN-of-MMMMM.tfrecord
and manifest.json. Re-running after an interruption writes only what is missing.
"""
from __future__ import annotations

import os
import sys
from typing import List, Optional

from absl import app, flags

from tf_rmi import config

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", "shapes", list(config.SPLITS_FOR_DATASET), "Dataset to write.")
flags.DEFINE_string("data_root", None, "Raw data: REFER's data/ folder (with the COCO "
                    "images under images/train2014) or ReferIt's data/referit/.")
flags.DEFINE_string("output_dir", "data/tfrecords", "Records go to <output_dir>/<dataset>/.")
flags.DEFINE_list("splits", [], "Splits to write (default: all of the dataset's).")
flags.DEFINE_string("vocab_file", None, "Vocabulary (one word per line). Default: the "
                    "original file name (vocabulary_Gref.txt / vocabulary_referit.txt) "
                    "looked up in --data_root and its parent.")
flags.DEFINE_bool("build_vocab", False, "Build the vocabulary from the training split "
                  "instead (written to <output_dir>/<dataset>/vocabulary.txt).")
flags.DEFINE_integer("min_count", 1, "Minimum count of a word in a built vocabulary.")
flags.DEFINE_integer("num_shards", None, "Shards per split (default: one per 256 expressions).")
flags.DEFINE_integer("num_workers", 2, "Worker processes.")
flags.DEFINE_integer("image_size", 320, "Side of the resized-and-padded training images.")
flags.DEFINE_integer("num_words", 20, "Word ids kept per expression (T).")
flags.DEFINE_bool("strict", False, "Stop at the first bad sample instead of skipping it.")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic shapes dataset.")


def make_source(dataset: str, data_root: Optional[str], seed: int = 0):
    """The reader of `dataset`; FileNotFoundError / ValueError say what is missing."""
    if dataset == "shapes":
        from tf_rmi.data.shapes import ShapesSource
        return ShapesSource(seed=seed)
    if not data_root:
        raise ValueError(f"--data_root is required for {dataset}: the REFER data folder "
                         "(refcoco/, refcoco+/, refcocog/, images/train2014/) or, for "
                         "referit, the folder with referit_query_<split>.json, images/, mask/")
    if dataset == "referit":
        from tf_rmi.data.referit import ReferItSource
        return ReferItSource(data_root)
    from tf_rmi.data.refer import ReferSource
    return ReferSource(data_root, dataset)


def find_vocab_file(vocab_name: Optional[str], data_root: Optional[str]) -> Optional[str]:
    """The original vocabulary file in `data_root` or its parent (the original
    kept data/vocabulary_*.txt beside data/referit/), or None."""
    if not vocab_name or not data_root:
        return None
    for directory in (data_root, os.path.dirname(os.path.abspath(data_root))):
        path = os.path.join(directory, vocab_name)
        if os.path.isfile(path):
            return path
    return None


def preprocess(dataset: str, data_root: Optional[str], output_dir: str,
               splits: Optional[List[str]] = None, vocab_file: Optional[str] = None,
               build_vocab: bool = False, min_count: int = 1,
               num_shards: Optional[int] = None, num_workers: int = 2, image_size: int = 320,
               num_words: int = 20, strict: bool = False, seed: int = 0, progress: bool = True):
    """Everything `main` does, callable from tests. Returns {split: SplitStats}."""
    from tf_rmi.data import preprocess_lib

    source = make_source(dataset, data_root, seed)
    settings = {"seed": int(seed)} if dataset == "shapes" else {}
    if not (build_vocab or source.vocab_name is None or vocab_file):
        vocab_file = find_vocab_file(source.vocab_name, data_root)
        if vocab_file is None:
            raise FileNotFoundError(
                f"{dataset} uses the original {source.vocab_name}, not found in {data_root} "
                "or its parent: pass --vocab_file=<path to it> (or --build_vocab to build "
                "a new vocabulary from the training split)")
    return preprocess_lib.build_dataset(
        source, output_dir, splits=splits or None, vocab_file=vocab_file,
        build_vocab=build_vocab, min_count=min_count, num_shards=num_shards,
        num_workers=num_workers, image_size=image_size, num_words=num_words, strict=strict,
        progress=progress, settings=settings)


def main(argv):
    del argv
    from tf_rmi.data.sources import DataError

    try:
        stats = preprocess(
            FLAGS.dataset, FLAGS.data_root, FLAGS.output_dir, FLAGS.splits, FLAGS.vocab_file,
            FLAGS.build_vocab, FLAGS.min_count, FLAGS.num_shards, FLAGS.num_workers,
            FLAGS.image_size, FLAGS.num_words, FLAGS.strict, FLAGS.seed)
    except (FileNotFoundError, ValueError, DataError) as err:
        sys.exit(f"build_data: {err}")
    total = sum(s.count for s in stats.values())
    print(f"Wrote {total} records of {FLAGS.dataset} ({', '.join(stats)}) to "
          f"{os.path.join(FLAGS.output_dir, FLAGS.dataset)}")


def run():
    app.run(main)


if __name__ == "__main__":
    run()

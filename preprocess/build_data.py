"""Writes the TFRecords of one dataset (the original's `build_batches.py`).

    python -m preprocess.build_data --dataset=unc --data_root=data/refer \
        --output_dir=data/tfrecords [--splits=train,val] [--vocab_file=...]

Datasets: unc, unc+, Gref, Gref_umd (REFER layout under --data_root),
referit (the original's data/referit/ layout) and shapes (synthetic, needs
no --data_root). Output: <output_dir>/<dataset>/<split>-NNNNN-of-MMMMM.tfrecord
and manifest.json. Re-running after an interruption writes only what is missing.
The work is `tf_rmi.data.preprocess_lib.preprocess`.
"""
from __future__ import annotations

import os

from absl import app, flags

from tf_rmi import config
from tf_rmi.errors import clean_exit

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", "shapes", list(config.DATASETS), "Dataset to write.")
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


@clean_exit("build_data")  # DataError: a bad sample under --strict
def main(argv):
    del argv
    from tf_rmi.data import preprocess_lib

    stats = preprocess_lib.preprocess(
        FLAGS.dataset, FLAGS.data_root, FLAGS.output_dir, FLAGS.splits, FLAGS.vocab_file,
        FLAGS.build_vocab, FLAGS.min_count, FLAGS.num_shards, FLAGS.num_workers,
        FLAGS.image_size, FLAGS.num_words, FLAGS.strict, FLAGS.seed)
    total = sum(s.count for s in stats.values())
    print(f"Wrote {total} records of {FLAGS.dataset} ({', '.join(stats)}) to "
          f"{os.path.join(FLAGS.output_dir, FLAGS.dataset)}")


def run():
    app.run(main)


if __name__ == "__main__":
    run()

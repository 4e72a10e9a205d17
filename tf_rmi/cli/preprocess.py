"""Writes the TFRecords of one dataset (the original's `build_batches.py`).

    tf_rmi preprocess --dataset=unc --data_root=data/refer \\
        --output_dir=data/tfrecords [--splits=train,val] [--vocab_file=...]

Datasets: unc, unc+, Gref, Gref_umd (REFER layout under --data_root),
referit (the original's data/referit/ layout) and shapes (synthetic, needs
no --data_root). Output: <output_dir>/<dataset>/<split>-NNNNN-of-MMMMM.tfrecord
and manifest.json. Re-running after an interruption writes only what is missing.
The work is `tf_rmi.data.preprocess_lib.preprocess`.
"""
import os

from absl import flags

from tf_rmi.cli import common


def define_flags(fv: flags.FlagValues) -> None:
    common.dataset(fv, help="Dataset to write: one of unc, unc+, Gref, Gref_umd, referit, shapes.")
    flags.DEFINE_string("data_root", None, "Raw data: REFER's data/ folder (with the COCO "
                        "images under images/train2014) or ReferIt's data/referit/.",
                        flag_values=fv)
    common.output_dir(fv, "data/tfrecords", "Records go to <output_dir>/<dataset>/.")
    flags.DEFINE_list("splits", [], "Splits to write (default: all of the dataset's).",
                      flag_values=fv)
    common.vocab_file(fv, "Vocabulary (one word per line). Default: the original file name "
                      "(vocabulary_Gref.txt / vocabulary_referit.txt) looked up in --data_root "
                      "and its parent.")
    flags.DEFINE_bool("build_vocab", False, "Build the vocabulary from the training split "
                      "instead (written to <output_dir>/<dataset>/vocabulary.txt).",
                      flag_values=fv)
    flags.DEFINE_integer("min_count", 1, "Minimum count of a word in a built vocabulary.",
                         flag_values=fv)
    flags.DEFINE_integer("num_shards", None, "Shards per split (default: one per 256 "
                         "expressions).", flag_values=fv)
    flags.DEFINE_integer("num_workers", 2, "Worker processes.", flag_values=fv)
    flags.DEFINE_integer("image_size", 320, "Side of the resized-and-padded training images.",
                         flag_values=fv)
    flags.DEFINE_integer("num_words", 20, "Word ids kept per expression (T).", flag_values=fv)
    flags.DEFINE_bool("strict", False, "Stop at the first bad sample instead of skipping it.",
                      flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Seed of the synthetic shapes dataset.", flag_values=fv)


def main(fv: flags.FlagValues, args) -> None:
    common.no_arguments(args)
    from tf_rmi.data import preprocess_lib

    stats = preprocess_lib.preprocess(
        fv.dataset, fv.data_root, fv.output_dir, fv.splits, fv.vocab_file, fv.build_vocab,
        fv.min_count, fv.num_shards, fv.num_workers, fv.image_size, fv.num_words, fv.strict,
        fv.seed)
    total = sum(s.count for s in stats.values())
    print(f"Wrote {total} records of {fv.dataset} ({', '.join(stats)}) to "
          f"{os.path.join(fv.output_dir, fv.dataset)}")
